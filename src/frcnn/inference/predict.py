"""Detections for image files, folders and globs (tiled for large images), and for the
batches of a loader (what evaluation scores)."""

from __future__ import annotations

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
from ..defaults import BATCH_SIZE, CONF, TILE_OVERLAP
from ..modeling.detector import FasterRCNN
from .tiling import batched, predict_tiled

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


def detect(
    model: nn.Module,
    images: list[torch.Tensor],
    device: torch.device,
    tile: int | None,
    overlap: float,
    batch_size: int,
) -> list[dict[str, torch.Tensor]]:
    """The model's detections for CHW images: whole, or (``tile``) each in overlapping
    tiles, ``batch_size`` at a time, merged per image."""

    def detector(batch: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return model([im.to(device) for im in batch])

    if tile:
        return [predict_tiled(detector, im, tile, overlap, batch_size) for im in images]
    return detector(images)


@torch.no_grad()
def predict_batches(
    model: nn.Module,
    batches: Iterable[tuple[list[torch.Tensor], list[dict]]],
    device: torch.device,
    tile: int | None = None,
    overlap: float = TILE_OVERLAP,
    batch_size: int = BATCH_SIZE,
) -> list[dict]:
    """Detections per image of a loader of ``(images, targets)`` (numpy, original
    coordinates), each with its target's ``image_id``: what evaluation scores. With
    ``tile``, each image is predicted in overlapping tiles (``batch_size`` tiles at a time)
    merged as ``frcnn predict --tile`` does."""
    model.eval()
    out = []
    for imgs, targets in batches:
        if not imgs:
            continue  # unreadable images were left out (and warned about) by the loader
        detections = detect(model, imgs, device, tile, overlap, batch_size)
        for det, target in zip(detections, targets, strict=True):
            out.append(
                {
                    "image_id": int(target["image_id"]),
                    "boxes": det["boxes"].float().cpu().numpy(),
                    "scores": det["scores"].float().cpu().numpy(),
                    "labels": det["labels"].cpu().numpy(),
                }
            )
    return out


def model_device(model: object) -> torch.device:
    """Where a detector's weights are: the CPU for one without PyTorch parameters (an
    exported model run by ONNX Runtime)."""
    parameters = getattr(model, "parameters", None)
    first = next(parameters(), None) if parameters is not None else None
    return first.device if first is not None else torch.device("cpu")


def detections_per_img(detector: object) -> int:
    """The most detections per image a detector returns: a FasterRCNN's box head's limit;
    wrappers (ensembles, calibrated or exported models) say it themselves."""
    return getattr(detector, "roi_heads", detector).detections_per_img


def predict_dataset(
    model: nn.Module,
    ds: DetectionDataset,
    tile: int | None = None,
    overlap: float = TILE_OVERLAP,
    batch_size: int = BATCH_SIZE,
) -> list[dict]:
    """:func:`predict_batches` over every image of ``ds`` (one image per batch when tiled:
    its tiles are batched instead), on the model's device."""
    from ..data.loader import DetectionTorchDataset, build_loader

    loader = build_loader(DetectionTorchDataset(ds), 1 if tile else batch_size)
    device = model_device(model)
    return predict_batches(model, loader, device, tile, overlap, batch_size)


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


@torch.no_grad()
def predict_images(
    model: FasterRCNN,
    files: Sequence[Path],
    conf: float = CONF,
    batch_size: int = BATCH_SIZE,
    tile: int | None = None,
    overlap: float = TILE_OVERLAP,
    exif: bool = True,
    skipped: list[tuple[Path, str]] | None = None,
) -> list[Prediction]:
    """Detections with score >= ``conf`` for each file, in original image pixels.

    A file that cannot be read (or is too long and thin to resize without ``tile``) is
    skipped with a warning and appended to ``skipped`` as ``(path, reason)``; the others are
    predicted."""
    skipped = skipped if skipped is not None else []
    chunks = (
        _readable(chunk, exif, tile is not None, skipped)  # decoded batch by batch
        for chunk in batched(list(files), 1 if tile else batch_size)
    )
    return _predict_chunks(model, chunks, conf, batch_size, tile, overlap)


@torch.no_grad()
def predict_arrays(
    model: FasterRCNN,
    images: Sequence[object],
    conf: float = CONF,
    batch_size: int = BATCH_SIZE,
    tile: int | None = None,
    overlap: float = TILE_OVERLAP,
) -> list[Prediction]:
    """Detections for images in memory (see :func:`as_rgb_array`), named ``image<i>``;
    each :class:`Prediction` keeps its array for drawing."""
    named = [(Path(f"image{i}"), as_rgb_array(im, i)) for i, im in enumerate(images)]
    chunks = batched(named, 1 if tile else batch_size)
    out = _predict_chunks(model, chunks, conf, batch_size, tile, overlap)
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
            raise ValueError(
                f"image {index}: a tensor must be CHW with 1 or 3 channels, got {tuple(image.shape)}"
            )
        image = image.detach().cpu().expand(3, -1, -1).permute(1, 2, 0).numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"image {index}: expected a path, PIL image, NumPy array or tensor, got "
            f"{type(image).__name__}"
        )
    if image.ndim == 2:
        image = np.stack([image] * 3, -1)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image {index}: a NumPy image must be HxWx3 or HxW, got {image.shape}")
    image = image[:, :, :3]
    if image.dtype != np.uint8 and (image.min() < 0 or image.max() > 1):
        raise ValueError(f"image {index}: a float image must hold values in 0..1 (or use uint8)")
    return image if image.dtype == np.uint8 else image.astype(np.float32)


def _predict_chunks(
    model: FasterRCNN,
    chunks: Iterable[Sequence[tuple[Path, np.ndarray]]],
    conf: float,
    batch_size: int,
    tile: int | None,
    overlap: float,
) -> list[Prediction]:
    """Detections with score >= ``conf`` for batches of ``(name, HxWx3 array)``."""
    model.eval()
    device = model_device(model)
    out: list[Prediction] = []
    for chunk in chunks:
        if not chunk:
            continue
        tensors = [to_tensor(im) for _, im in chunk]
        dets = detect(model, tensors, device, tile, overlap, batch_size)
        for (path, _), image, det in zip(chunk, tensors, dets, strict=True):
            out.append(Prediction.kept(path, image, det, conf))
    return out
