"""The one path from a detector to predictions: for image files, folders and globs, for
images in memory, and for the batches of a loader or a dataset (what evaluation scores).
What the detector is (tiled, fused, calibrated) is composed in :mod:`.compose`."""

from __future__ import annotations

import dataclasses
import glob
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.images import IMAGE_SUFFIXES, MAX_ASPECT, load_image, to_tensor
from ..data.records import DetectionDataset, label_name
from ..engine.distributed import DistInfo
from ..errors import InputError, InputTypeError
from ..words import count
from .detectors import detections_per_img, model_device
from .options import InferenceOptions
from .ranks import gather, share
from .tiling import batched

__all__ = [
    "Prediction",
    "as_rgb_array",
    "by_size",
    "detect",
    "detections_per_img",
    "expand_sources",
    "model_device",
    "predict_arrays",
    "predict_batches",
    "predict_dataset",
    "predict_images",
]

log = logging.getLogger("frcnn")


def expand_sources(sources: Sequence[str]) -> list[Path]:
    """Files, folders (searched recursively for images) and glob patterns, in order."""
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                log.warning("no images (%s) in %s", " ".join(IMAGE_SUFFIXES), path)
            files += found
        elif path.is_file():
            files.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(source, recursive=True))
            if not matches:
                raise FileNotFoundError(f"no image matches {source!r}")
            files += [m for m in matches if m.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise FileNotFoundError(f"no images to predict on in {', '.join(map(str, sources))}")
    return files


@torch.no_grad()
def detect(detector: nn.Module, images: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The detector's detections for CHW images (see :mod:`frcnn.inference.detectors`): the
    one place predictions are made."""
    if hasattr(detector, "eval"):
        detector.eval()
    return detector(list(images))


def predict_batches(
    detector: nn.Module, batches: Iterable[tuple[list[torch.Tensor], list[dict]]]
) -> list[dict]:
    """Detections per image of a loader of ``(images, targets)`` (numpy, original
    coordinates), each with its target's ``image_id``: what evaluation scores."""
    out = []
    for imgs, targets in batches:
        if not imgs:
            continue  # unreadable images were left out (and warned about) by the loader
        for det, target in zip(detect(detector, imgs), targets, strict=True):
            out.append(
                {
                    "image_id": int(target["image_id"]),
                    "boxes": det["boxes"].float().cpu().numpy(),
                    # float64 as it comes (calibrated scores), float32 promoted exactly
                    "scores": det["scores"].double().cpu().numpy(),
                    "labels": det["labels"].cpu().numpy(),
                }
            )
    return out


def predict_dataset(
    detector: nn.Module,
    ds: DetectionDataset,
    options: InferenceOptions | None = None,
    exif: bool = True,
    ranks: DistInfo | None = None,
) -> list[dict]:
    """:func:`predict_batches` over every image of ``ds``, ``options.images_per_batch`` at a
    time, the images ordered by size so that a batch holds images of one padded size. With
    ``ranks`` (a torchrun job, :mod:`frcnn.inference.ranks`) and no tiling, each rank
    predicts every ``world_size``-th batch and every rank gets all the detections in
    the order one process gives them (tiled, the detector shares each image's tiles)."""
    from ..data.loader import DetectionTorchDataset, build_loader

    options = options or InferenceOptions()
    ordered = by_size(ds)
    if options.tile is not None:
        ranks = None  # every rank sees every image; the tiled detector shares the tiles
    mine = share(ordered.images, ranks, options.images_per_batch)
    part = dataclasses.replace(ordered, images=[r for _, r in mine])
    loader = build_loader(DetectionTorchDataset(part, exif=exif), options.images_per_batch)
    position = {r.image_id: i for i, r in mine}
    found = [(position[p["image_id"]], p) for p in predict_batches(detector, loader)]
    return gather(found, ranks, "images")


def by_size(ds: DetectionDataset) -> DetectionDataset:
    """``ds`` with its images ordered by (height, width): batches of one size."""
    images = sorted(ds.images, key=lambda r: (r.height or 0, r.width or 0))
    return dataclasses.replace(ds, images=images)


@dataclass
class Prediction:
    path: Path
    width: int
    height: int
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    # The image itself when it came from memory (not a file), for drawing.
    array: np.ndarray | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        found = count(len(self.scores), "detection")
        return f"Prediction({self.path}: {self.width}x{self.height}, {found})"

    @classmethod
    def kept(cls, path: Path, image: torch.Tensor, det: dict, conf: float) -> Prediction:
        """A detector's output for a CHW image, detections scoring >= ``conf`` kept."""
        sure = det["scores"] >= conf
        return cls(
            Path(path),
            int(image.shape[-1]),
            int(image.shape[-2]),
            det["boxes"][sure].float().cpu().numpy(),
            det["scores"][sure].float().cpu().numpy(),
            det["labels"][sure].cpu().numpy(),
        )

    def csv_cells(self, class_names: Sequence[str] | None) -> list[list[str]]:
        """Per detection: xmin, ymin, xmax, ymax (2 decimals), class name, score (5)."""
        return [
            [*(f"{v:.2f}" for v in b), label_name(class_names, c), f"{s:.5f}"]
            for b, s, c in zip(
                self.boxes.tolist(), self.scores.tolist(), self.labels.tolist(), strict=True
            )
        ]

    def to_json(self, class_names: Sequence[str] | None) -> dict:
        return {
            "image": str(self.path),
            "width": self.width,
            "height": self.height,
            "detections": [
                {
                    "label": int(c),
                    "name": label_name(class_names, int(c)),
                    "score": round(float(s), 5),
                    "box": [round(float(v), 2) for v in b],
                }
                for b, s, c in zip(self.boxes, self.scores, self.labels, strict=True)
            ],
        }


def _readable(
    files: Sequence[Path], exif: bool, tiled: bool, skipped: list[tuple[Path, str]]
) -> list[tuple[Path, np.ndarray]]:
    """``(path, image)`` of every file that decodes (and, untiled, has a sane aspect)."""
    images = []
    for path in files:
        try:
            image = load_image(path, exif)
        except Exception as err:  # PIL raises many types; all mean this file is unusable
            reason = f"cannot read the image ({type(err).__name__}: {err})"
        else:
            h, w = image.shape[:2]
            if tiled or max(h, w) <= MAX_ASPECT * max(1, min(h, w)):
                images.append((path, image))
                continue
            reason = f"{w}x{h} is more than {MAX_ASPECT}:1; predict it with --tile"
        log.warning("skipped %s: %s", path, reason)
        skipped.append((path, reason))
    return images


def predict_images(
    detector: nn.Module,
    files: Sequence[Path],
    options: InferenceOptions | None = None,
    exif: bool = True,
    skipped: list[tuple[Path, str]] | None = None,
    ranks: DistInfo | None = None,
) -> list[Prediction]:
    """Detections scoring at least the options' threshold for each file, in original image
    pixels, ``options.images_per_batch`` files decoded and predicted at a time.

    A file that cannot be read (or is too long and thin to resize without ``options.tile``)
    is skipped with a warning and appended to ``skipped`` as ``(path, reason)``; the others
    are predicted. With ``ranks`` the files are shared as :func:`predict_dataset` shares
    images; every rank gets every prediction and every skipped file."""
    options = options or InferenceOptions()
    skipped = skipped if skipped is not None else []
    if options.tile is not None:
        ranks = None  # the tiled detector shares each image's tiles
    mine = share(list(files), ranks, options.images_per_batch)
    position = {path: i for i, path in mine}
    lost: list[tuple[Path, str]] = []
    chunks = (
        _readable(chunk, exif, options.tile is not None, lost)  # decoded batch by batch
        for chunk in batched([path for _, path in mine], options.images_per_batch)
    )
    found = _predict_chunks(detector, chunks, options.threshold(detector))
    skipped += gather([(position[path], (path, why)) for path, why in lost], ranks)
    return gather([(position[p.path], p) for p in found], ranks, "images")


def predict_arrays(
    detector: nn.Module, images: Sequence[object], options: InferenceOptions | None = None
) -> list[Prediction]:
    """Detections for images in memory (see :func:`as_rgb_array`), named ``image<i>``;
    each :class:`Prediction` keeps its array for drawing."""
    options = options or InferenceOptions()
    named = [(Path(f"image{i}"), as_rgb_array(im, i)) for i, im in enumerate(images)]
    chunks = batched(named, options.images_per_batch)
    out = _predict_chunks(detector, chunks, options.threshold(detector))
    for prediction, (_, array) in zip(out, named, strict=True):
        prediction.array = array
    return out


def as_rgb_array(image: object, index: int = 0) -> np.ndarray:
    """An image in memory as an HxWx3 RGB array: a PIL image; a NumPy array HxWx3 or HxW
    (uint8, or float in 0..1); or a tensor CHW (float in 0..1, or uint8) as torchvision
    takes them. NumPy arrays are read as RGB: convert OpenCV's BGR with ``img[..., ::-1]``.

    Raises:
        TypeError, ValueError: anything else, naming the image's position and shape.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] not in (1, 3):
            raise InputError(
                f"image {index}: a tensor must be CHW with 1 or 3 channels, got {tuple(image.shape)}"
            )
        image = image.detach().cpu().expand(3, -1, -1).permute(1, 2, 0).numpy()
    if not isinstance(image, np.ndarray):
        raise InputTypeError(
            f"image {index}: expected a path, PIL image, NumPy array or tensor, got "
            f"{type(image).__name__}"
        )
    if image.ndim == 2:
        image = np.stack([image] * 3, -1)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"image {index}: a NumPy image must be HxWx3 or HxW, got {image.shape}")
    image = image[:, :, :3]
    if image.dtype != np.uint8 and (image.min() < 0 or image.max() > 1):
        raise InputError(f"image {index}: a float image must hold values in 0..1 (or use uint8)")
    return image if image.dtype == np.uint8 else image.astype(np.float32)


def _predict_chunks(
    detector: nn.Module, chunks: Iterable[Sequence[tuple[Path, np.ndarray]]], conf: float
) -> list[Prediction]:
    """Detections with score >= ``conf`` for batches of ``(name, HxWx3 array)``."""
    out: list[Prediction] = []
    for chunk in chunks:
        if not chunk:
            continue
        tensors = [to_tensor(im) for _, im in chunk]
        dets = detect(detector, tensors)
        for (path, _), image, det in zip(chunk, tensors, dets, strict=True):
            out.append(Prediction.kept(path, image, det, conf))
    return out
