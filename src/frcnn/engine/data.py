"""The data of a training run: read and checked datasets, the validation split, loaders."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, Sampler

from ..config import TrainConfig
from ..data.augment import Augmenter
from ..data.check import DataReport, check_dataset
from ..data.decoded import DecodedImages
from ..data.loader import DetectionTorchDataset, RepeatFactorSampler, build_loader
from ..data.mosaic import Mosaic
from ..data.records import DetectionDataset
from ..data.sources import list_splits, read_dataset
from ..data.tiles import TiledDataset, split_blocks
from ..errors import InputError
from .distributed import DistInfo
from .stream import Streamed, StreamEpochs, stream_loader

log = logging.getLogger("frcnn")


def load_datasets(
    cfg: TrainConfig,
) -> tuple[DetectionDataset, DetectionDataset, DataReport, DataReport | None]:
    """Read and check the training (and validation) data; split off validation when none."""
    if not cfg.data.train:
        raise InputError("no training data: pass --data DATA (or data.train in the config)")
    d = cfg.data
    train, train_report = check_dataset(
        read_dataset(d.train, d.format, None, d.images, d.exif), "header", d.exif
    )
    if d.val:
        val, val_report = check_dataset(
            read_dataset(d.val, d.format, val_read_split(cfg), d.images, d.exif), "header", d.exif
        )
        if val.class_names != train.class_names:
            raise InputError(
                f"validation classes {val.class_names} differ from training classes {train.class_names}"
            )
        return train, val, train_report, val_report
    train, val = hold_out(train, cfg)
    return train, val, train_report, None


def val_read_split(cfg: TrainConfig) -> str | None:
    """The split of ``data.val`` to read: ``--val`` naming the training source means its
    "val" split (e.g. a YOLO data.yaml)."""
    d = cfg.data
    return "val" if d.val == d.train and "val" in list_splits(d.val, d.format) else None


def hold_out(
    train: DetectionDataset, cfg: TrainConfig
) -> tuple[DetectionDataset, DetectionDataset]:
    """Split ``data.val_split`` of the training data off for validation: whole images, or,
    when tiling, spatially disjoint blocks (validated on their tiles)."""
    d = cfg.data
    if not 0 < d.val_split < 1:
        raise InputError(
            f"data.val_split must be in (0, 1) when no --val is given, got {d.val_split}"
        )
    if d.tile:
        train, val, report = split_blocks(
            train, d.tile, d.val_split, d.tile_min_visibility, cfg.run.seed
        )
        log.info(
            "validation: %d of %d blocks held out (predicted in tiles of %d px); %d boxes cut "
            "by block edges dropped",
            report["val_blocks"],
            report["blocks"],
            d.tile,
            report["boxes_cut"],
        )
        return train, val
    if len(train.images) < 2:
        raise InputError(
            f"{d.train} holds {len(train.images)} usable image(s): too few to hold out "
            f"{d.val_split:.0%} for validation. Pass validation data with --val DATA, or tile "
            "large images with --tile SIZE (tiles are split into disjoint training and "
            "validation blocks)"
        )
    order = np.random.default_rng(cfg.run.seed).permutation(len(train.images))
    n_val = max(1, int(round(len(order) * d.val_split)))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return subset(train, train_idx, "train"), subset(train, val_idx, "val")


def subset(ds: DetectionDataset, indices: np.ndarray, split: str) -> DetectionDataset:
    """The images of ``ds`` at ``indices``, as split ``split``."""
    return DetectionDataset(
        ds.root,
        ds.class_names,
        [ds.images[i] for i in indices.tolist()],
        source=ds.source,
        format=ds.format,
        split=split,
    )


@dataclass
class Loaders:
    """Training and validation loaders and what reseeds them every epoch."""

    train: DataLoader | StreamEpochs
    val: DataLoader
    sampler: Sampler | None
    augmenter: Augmenter
    seed: int
    generator: torch.Generator | None = None
    val_loss: DataLoader | None = None  # validation tiles when tiling, else val
    mosaic: Mosaic | None = None

    def set_epoch(self, epoch: int) -> None:
        """Reseed augmentation and shuffling so epoch ``epoch`` is the same on a resume."""
        self.augmenter.set_epoch(epoch)
        if self.mosaic is not None:
            self.mosaic.set_epoch(epoch)
        if isinstance(self.sampler, (DistributedSampler, RepeatFactorSampler)):
            self.sampler.set_epoch(epoch)
        elif self.generator is not None:
            self.generator.manual_seed(self.seed + epoch)

    def close(self) -> None:
        """Stop a stream's loader workers (a loader over files stops by itself)."""
        if isinstance(self.train, StreamEpochs):
            self.train.close()


def training_items(
    cfg: TrainConfig,
    train: DetectionDataset,
    augmenter: Augmenter,
    decoded: DecodedImages | None = None,
) -> DetectionTorchDataset:
    """The training items: images, or their tiles when tiling (said in the log; their images
    decoded once into ``decoded``), mosaics among them with ``data.mosaic``.

    Raises:
        ValueError: no training items left.
    """
    d = cfg.data
    if d.tile:
        items = TiledDataset(
            train,
            d.tile,
            d.overlap,
            d.tile_min_visibility,
            augmenter,
            d.exif,
            d.tile_cache_mb,
            decoded,
        )
        log.info(
            "tiles: %d of %d px from %d images; %s",
            len(items),
            d.tile,
            len(train),
            dict(items.report),
        )
    else:
        items = DetectionTorchDataset(train, augmenter, exif=d.exif)
    if len(items) == 0:
        raise InputError(
            f"no training data left after the validation split of {d.train}; pass validation "
            "data with --val DATA or a smaller --val-split"
        )
    if d.mosaic:
        items.mosaic = Mosaic(d.mosaic, cfg.run.seed, d.min_visibility)
    return items


def build_loaders(
    cfg: TrainConfig,
    train: DetectionDataset,
    val: DetectionDataset,
    info: DistInfo,
    streamed: Streamed | None = None,
) -> Loaders:
    """Augmented (optionally tiled) training items with their sampler, or the ``streamed``
    source's batches; validation in order."""
    d, seed = cfg.data, cfg.run.seed
    augmenter = Augmenter(d.augment, min_visibility=d.min_visibility, seed=seed)
    if streamed is not None:
        batches = stream_loader(cfg, streamed, augmenter, info)
        val_batches = val_loader(cfg, val, info)
        return Loaders(batches, val_batches, None, augmenter, seed, val_loss=val_batches)
    # The tiles and blocks of a large image (training and validation) share its decode.
    decoded = DecodedImages(d.tile_cache_mb * 2**20) if d.tile else None
    items = training_items(cfg, train, augmenter, decoded)
    generator = None
    if d.repeat_threshold is not None and not d.tile:
        sampler = RepeatFactorSampler(
            train, d.repeat_threshold, seed=seed, rank=info.rank, world_size=info.world_size
        )
    elif info.enabled:
        sampler = DistributedSampler(items, info.world_size, info.rank, shuffle=True, seed=seed)
    else:
        generator = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(items, generator=generator)
    val_batches = val_loader(cfg, val, info, decoded)
    # Validation losses are measured on what training sees: tiles when tiling.
    loss_items = (
        TiledDataset(val, d.tile, d.overlap, d.tile_min_visibility, None, d.exif, decoded=decoded)
        if d.tile
        else val_batches.dataset
    )
    return Loaders(
        build_loader(items, d.batch_size, d.workers, sampler, rank=info.rank),
        val_batches,
        sampler,
        augmenter,
        seed,
        generator,
        build_loader(loss_items, d.batch_size, d.workers, _in_order(loss_items, info)),
        items.mosaic,
    )


def val_loader(
    cfg: TrainConfig, val: DetectionDataset, info: DistInfo, decoded: DecodedImages | None = None
) -> DataLoader:
    """The validation images in order (each rank its share under torchrun); ``decoded``
    keeps the source images that validation blocks share."""
    d = cfg.data
    items = DetectionTorchDataset(val, None, exif=d.exif, decoded=decoded)
    return build_loader(items, d.batch_size, d.workers, _in_order(items, info))


def _in_order(items: Dataset, info: DistInfo) -> Sampler | None:
    """Each rank's share of ``items`` in order under torchrun; None (all, in order) else."""
    if not info.enabled:
        return None
    return DistributedSampler(items, info.world_size, info.rank, shuffle=False)


def data_warnings(
    train: DetectionDataset, val: DetectionDataset, streamed: bool = False
) -> list[str]:
    """What makes a run's numbers meaningless or partial, in words: no boxes to learn from,
    no boxes to measure on, validation classes that training never sees (the training
    images of a ``streamed`` source are not known ahead: only validation is checked)."""

    in_train, in_val = train.instance_counts()[1:], val.instance_counts()[1:]
    warnings = []
    if streamed:
        in_train = in_val
    elif in_train.sum() == 0:
        warnings.append("the training data holds no boxes: the model can only learn background")
    if in_val.sum() == 0:
        warnings.append(
            "the validation data holds no boxes: mAP, F1 and the score cannot be measured "
            "(best.safetensors and top-k files are not chosen); pass validation data with "
            "boxes (--val)"
        )
    unseen = [
        name for name, t, v in zip(train.class_names, in_train, in_val, strict=True) if v and not t
    ]
    if unseen:
        warnings.append(
            f"validation classes with no training boxes (they cannot be learned): {', '.join(unseen)}"
        )
    return warnings
