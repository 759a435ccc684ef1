"""PyTorch datasets, collate and samplers over checked records."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import UnreadableImageError
from .augment import Augmenter
from .decoded import DecodedImages, source_key
from .images import load_image, to_rgb_array, to_tensor
from .mosaic import Mosaic, Part, combine
from .records import DetectionDataset, ImageRecord

log = logging.getLogger("frcnn")


def resize_longest(
    image: np.ndarray, boxes: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Scale an image (and its boxes) so its longer side is ``size`` pixels."""
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    if scale == 1.0:
        return image, boxes
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = cv2.resize(
        image, new, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    sx, sy = new[0] / w, new[1] / h
    return resized, boxes * np.array([sx, sy, sx, sy], np.float32)


def readable_images(
    records: Sequence[ImageRecord], what: str, exif: bool = True
) -> list[tuple[int, np.ndarray]]:
    """``(index, image)`` of each record whose image reads; one that does not (damaged,
    gone since it was checked) costs only itself: the warning counts them, naming the
    first, and says what they were left out of (``what``)."""
    found, bad = [], []
    for i, rec in enumerate(records):
        try:
            found.append((i, read_record_image(rec, exif)))
        except UnreadableImageError as err:
            bad.append(str(err))
    if bad:
        log.warning(
            "warning: %d of %d images could not be read and were left out of %s (first: %s)",
            len(bad),
            len(records),
            what,
            bad[0],
        )
    return found


def read_record_image(
    rec: ImageRecord, exif: bool = True, decoded: DecodedImages | None = None
) -> np.ndarray:
    """The record's image (its ``window`` of it, when set) as HxWx3 (uint8, or float32 for
    16-bit sources), an array of its own; with ``decoded``, the source image is decoded
    once and kept there for the records that share it (the tiles or blocks of one large
    image)."""
    image = record_pixels(rec, exif, decoded)
    return np.array(image) if decoded is not None else np.ascontiguousarray(image)


def record_pixels(
    rec: ImageRecord, exif: bool = True, decoded: DecodedImages | None = None
) -> np.ndarray:
    """:func:`read_record_image` without the copy: with ``decoded`` the array may view the
    kept source image, so it must not be changed in place."""
    key = source_key(rec, exif)
    image = decoded.get(key) if decoded is not None else None
    if image is None:
        image = _read_source(rec, exif)
        if decoded is not None:
            decoded.put(key, image)
    if rec.window is None:
        return image
    x1, y1, x2, y2 = rec.window
    return image[y1:y2, x1:x2]


def _read_source(rec: ImageRecord, exif: bool) -> np.ndarray:
    if rec.image is not None:
        return to_rgb_array(rec.image)
    try:
        return load_image(rec.path, exif)
    except Exception as err:
        raise UnreadableImageError(
            f"cannot read image {rec.file_name} ({rec.path}): {err}"
        ) from err


class DetectionTorchDataset(Dataset):
    """Images and targets for training and evaluation, from a checked dataset.

    Each item is ``(image, target)``: a float CHW tensor in 0..1 and a dict with ``boxes``
    FloatTensor[N, 4] (xyxy pixels of the returned image), ``labels`` Int64Tensor[N],
    ``image_id``, ``area``, ``iscrowd`` (all zero), ``ignore_boxes`` FloatTensor[M, 4] (crowd
    and difficult regions, not trained on) and ``aug_dropped`` (boxes augmentation removed:
    the training loop adds these up and reports them).

    Args:
        ds: records after :func:`frcnn.data.check_dataset`.
        augment: an :class:`Augmenter`, or None.
        image_size: if set, images are scaled so their longer side is this many pixels
            (changeable between epochs with :meth:`set_image_size` for progressive resizing).
        exif: apply EXIF orientation.
        decoded: keep decoded images here for the records that share them (blocks of a
            large image); None decodes every read.
    """

    def __init__(
        self,
        ds: DetectionDataset,
        augment: Augmenter | None = None,
        image_size: int | None = None,
        exif: bool = True,
        decoded: DecodedImages | None = None,
    ) -> None:
        self.ds = ds
        self.decoded = decoded
        self.augment = augment
        self.image_size = image_size
        self.exif = exif
        self.mosaic: Mosaic | None = None  # training: some items four images in one

    def set_image_size(self, size: int | None) -> None:
        """Change the image size; DataLoader workers pick it up at the next epoch unless
        ``persistent_workers`` keeps the old copies alive."""
        self.image_size = size

    def __len__(self) -> int:
        return len(self.ds.images)

    def load(self, index: int) -> tuple[np.ndarray, ImageRecord]:
        rec = self.ds.images[index]
        return read_record_image(rec, self.exif, self.decoded), rec

    def part(self, index: int) -> tuple[Part, int]:
        """Item ``index`` before augmentation: (image, boxes, labels, ignore) and its
        image id."""
        image, rec = self.load(index)
        return (image, rec.boxes, rec.labels, rec.iscrowd | rec.ignore), rec.image_id

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        """The item (a mosaic of four when :attr:`mosaic` draws one), or None when an image
        cannot be read now (it passed the checks but was changed or damaged since):
        :func:`collate` leaves it out and counts it."""
        try:
            first, image_id = self.part(index)
            drawn = self.mosaic.draw(index, len(self)) if self.mosaic is not None else None
            if drawn is None:
                return self.make_item(*first, image_id)
            partners, (fx, fy) = drawn
            size = max(first[0].shape[:2])
            parts = [first] + [_scaled(self.part(j)[0], size) for j in partners]
        except UnreadableImageError as err:
            log.warning("skipped: %s", err)
            return None
        h, w = first[0].shape[:2]
        *combined, cut = combine(parts, (round(fx * w), round(fy * h)), self.mosaic.min_visibility)
        return self.make_item(*combined, image_id, cut)

    def make_item(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        labels: np.ndarray,
        ignore: np.ndarray,
        image_id: int,
        dropped: int = 0,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The tensors of one item; ``dropped`` boxes were already cut before (a mosaic's)."""
        if self.image_size is not None:
            image, boxes = resize_longest(image, boxes, self.image_size)
        if self.augment is not None:
            trained_before = int((~ignore).sum())
            image, boxes, kept = self.augment(image, boxes)
            labels, ignore = labels[kept], ignore[kept]
            dropped += trained_before - int((~ignore).sum())
        train = ~ignore
        target = {
            "boxes": torch.from_numpy(np.ascontiguousarray(boxes[train], np.float32)).reshape(
                -1, 4
            ),
            "labels": torch.from_numpy(np.ascontiguousarray(labels[train], np.int64)),
            "image_id": torch.tensor(image_id, dtype=torch.int64),
            "ignore_boxes": torch.from_numpy(
                np.ascontiguousarray(boxes[ignore], np.float32)
            ).reshape(-1, 4),
            "aug_dropped": torch.tensor(dropped, dtype=torch.int64),
        }
        b = target["boxes"]
        target["area"] = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        target["iscrowd"] = torch.zeros(len(b), dtype=torch.int64)
        return to_tensor(image), target


def _scaled(part: Part, size: int) -> Part:
    """A mosaic part at the first part's scale (longest side ``size``)."""
    image, boxes, labels, ignore = part
    image, boxes = resize_longest(image, boxes, size)
    return image, boxes, labels, ignore


class Targets(list):
    """The targets of a batch; ``unreadable`` counts the items left out because their image
    could not be read."""

    unreadable: int = 0


def collate(
    batch: Sequence[tuple[torch.Tensor, dict] | None],
) -> tuple[list[torch.Tensor], Targets]:
    """Keep images and targets as lists: the detector takes images of any size and any number
    of boxes per image, so no padding of targets is needed. Unreadable items (None) are left
    out and counted in ``targets.unreadable``."""
    items = [b for b in batch if b is not None]
    targets = Targets(t for _, t in items)
    targets.unreadable = len(batch) - len(items)
    return [im for im, _ in items], targets


def repeat_factors(ds: DetectionDataset, threshold: float) -> np.ndarray:
    """LVIS repeat factors: class c seen in a fraction f_c of the images gets
    ``r_c = max(1, sqrt(threshold / f_c))``; an image repeats by the largest r_c among its
    classes (1 for images without boxes)."""
    num_images = max(len(ds.images), 1)
    present = [np.unique(r.labels[~(r.iscrowd | r.ignore)]) for r in ds.images]
    counts = np.zeros(ds.num_classes, np.float64)
    for labels in present:
        counts[labels] += 1
    freq = counts / num_images
    with np.errstate(divide="ignore"):
        per_class = np.maximum(1.0, np.sqrt(threshold / freq))
    return np.array([per_class[labels].max() if len(labels) else 1.0 for labels in present])


class RepeatFactorSampler(Sampler[int]):
    """Draws images holding rare classes more often (LVIS-style repeat-factor sampling).

    Each epoch an image appears ``floor(r)`` times plus once more with probability
    ``r - floor(r)``, shuffled. Call :meth:`set_epoch` before each epoch for a new draw.

    Args:
        ds: the training records.
        threshold: class frequency (fraction of images) below which a class is repeated.
        seed: base seed; the epoch is added to it.
        shuffle: shuffle the drawn indices.
        rank, world_size: in multi-process training each rank takes every world_size-th
            index of the same draw.
    """

    def __init__(
        self,
        ds: DetectionDataset,
        threshold: float = 0.1,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.factors = repeat_factors(ds, threshold)
        self.seed = seed
        self.shuffle = shuffle
        self.rank, self.world_size = rank, world_size
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        g = torch.Generator().manual_seed(self.seed + epoch)
        whole = np.floor(self.factors)
        extra = torch.rand(len(self.factors), generator=g).numpy() < (self.factors - whole)
        reps = (whole + extra).astype(np.int64)
        indices = torch.from_numpy(np.repeat(np.arange(len(self.factors)), reps))
        if self.shuffle:
            indices = indices[torch.randperm(len(indices), generator=g)]
        self._indices = indices.tolist()[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices)

    def __len__(self) -> int:
        return len(self._indices)

    @property
    def expected_length(self) -> float:
        return float(self.factors.sum())


def build_loader(
    items: Dataset,
    batch_size: int,
    workers: int = 0,
    sampler: Sampler | None = None,
    generator: torch.Generator | None = None,
    rank: int = 0,
) -> DataLoader:
    """The one way frcnn batches detection items: lists of images and targets
    (:func:`collate`), in order unless a ``sampler`` says otherwise, last batch kept.
    ``generator`` seeds the workers instead of torch's global generator. The items'
    augmenter draws its own sequence on every ``rank`` and in every worker
    (:meth:`Augmenter.set_part`)."""
    augment = getattr(items, "augment", None)
    if augment is not None and workers == 0:
        augment.set_part(rank)
    return DataLoader(
        items,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        drop_last=False,
        generator=generator,
        worker_init_fn=functools.partial(_worker_part, rank) if augment is not None else None,
    )


def _worker_part(rank: int, worker: int) -> None:
    """In a DataLoader worker: its own augmentation sequence (part rank x workers + id)."""
    info = torch.utils.data.get_worker_info()
    info.dataset.augment.set_part(rank * info.num_workers + worker)
