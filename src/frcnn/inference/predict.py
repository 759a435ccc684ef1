"""``frcnn predict``: detections for image files, folders and globs; tiled for large images."""

from __future__ import annotations

import csv
import glob
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.ops import batched_nms

from ..boxes.overlap import box_area, box_ioa
from ..data.images import IMAGE_SUFFIXES, load_image, to_pil, to_tensor
from ..data.records import label_name
from ..data.tiles import tile_windows
from ..defaults import BATCH_SIZE, CONF, TILE_OVERLAP
from ..evaluation.coco import coco_results
from ..modeling.detector import FasterRCNN

Detector = Callable[[list[torch.Tensor]], list[dict[str, torch.Tensor]]]


def expand_sources(sources: Sequence[str]) -> list[Path]:
    """Files, folders (searched recursively for images) and glob patterns, in order."""
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(source, recursive=True))
            if not matches:
                raise FileNotFoundError(f"no image matches {source!r}")
            files += [m for m in matches if m.suffix.lower() in IMAGE_SUFFIXES]
    return files


def _batched(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def merge_tiles(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    labels: torch.Tensor,
    cut: torch.Tensor,
    iou_threshold: float = 0.5,
    containment: float = 0.7,
) -> torch.Tensor:
    """Indices of the detections to keep after tiling.

    1. Per-class NMS removes the same object seen whole by overlapping tiles.
    2. A box cut by an inner tile edge (``cut``) is dropped when at least ``containment`` of
       it lies inside a larger kept box of its class: the partial view of an object that
       another tile saw whole.
    """
    keep = batched_nms(boxes, scores, labels, iou_threshold)
    kb, kl, kc = boxes[keep], labels[keep], cut[keep]
    area = box_area(kb)
    inside = box_ioa(kb, kb)  # share of box i inside box j
    covered = (
        (inside >= containment) & (kl[:, None] == kl[None, :]) & (area[None, :] > area[:, None])
    )
    return keep[~(kc & covered.any(1))]


def predict_tiled(
    detector: Detector,
    image: torch.Tensor,
    tile: int,
    overlap: float,
    batch_size: int = BATCH_SIZE,
    edge: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Run ``detector`` on overlapping tiles of a CHW image and merge the detections so an
    object on a seam is reported once (see :func:`merge_tiles`)."""
    height, width = image.shape[-2:]
    windows = tile_windows(width, height, tile, overlap)
    all_boxes, all_scores, all_labels, all_cut = [], [], [], []
    for chunk in _batched(windows, batch_size):
        crops = [
            image[:, int(y1) : int(y2), int(x1) : int(x2)] for x1, y1, x2, y2 in chunk.tolist()
        ]
        for (x1, y1, x2, y2), det in zip(chunk.tolist(), detector(crops), strict=True):
            b = det["boxes"] + torch.tensor(
                [x1, y1, x1, y1], dtype=det["boxes"].dtype, device=det["boxes"].device
            )
            # Touching an edge of the tile that is not an edge of the image: possibly cut.
            inner = torch.tensor([x1 > 0, y1 > 0, x2 < width, y2 < height], device=b.device)
            at_edge = torch.stack(
                [
                    b[:, 0] <= x1 + edge,
                    b[:, 1] <= y1 + edge,
                    b[:, 2] >= x2 - edge,
                    b[:, 3] >= y2 - edge,
                ],
                1,
            )
            all_boxes.append(b)
            all_scores.append(det["scores"])
            all_labels.append(det["labels"])
            all_cut.append((at_edge & inner).any(1))
    boxes, scores = torch.cat(all_boxes), torch.cat(all_scores)
    labels, cut = torch.cat(all_labels), torch.cat(all_cut)
    keep = merge_tiles(boxes, scores, labels, cut)
    order = scores[keep].argsort(descending=True)
    keep = keep[order]
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


@torch.no_grad()
def predict_batches(
    model: nn.Module, batches: Iterable[tuple[list[torch.Tensor], list[dict]]], device: torch.device
) -> list[dict]:
    """Detections per image of a loader of ``(images, targets)`` (numpy, original
    coordinates), each with its target's ``image_id``: what evaluation scores."""
    model.eval()
    out = []
    for imgs, targets in batches:
        detections = model([im.to(device) for im in imgs])
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


@dataclass
class Prediction:
    path: Path
    width: int
    height: int
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

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


@torch.no_grad()
def predict_images(
    model: FasterRCNN,
    files: Sequence[Path],
    conf: float = CONF,
    batch_size: int = BATCH_SIZE,
    tile: int | None = None,
    overlap: float = TILE_OVERLAP,
    exif: bool = True,
) -> list[Prediction]:
    """Detections with score >= ``conf`` for each file, in original image pixels."""
    model.eval()
    device = next(model.parameters()).device

    def detector(images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return model([im.to(device) for im in images])

    out: list[Prediction] = []
    for chunk in _batched(list(files), 1 if tile else batch_size):
        tensors = [to_tensor(load_image(p, exif)) for p in chunk]
        if tile:
            dets = [predict_tiled(detector, tensors[0], tile, overlap, batch_size)]
        else:
            dets = detector(tensors)
        for path, image, det in zip(chunk, tensors, dets, strict=True):
            sure = det["scores"] >= conf
            out.append(
                Prediction(
                    path,
                    int(image.shape[-1]),
                    int(image.shape[-2]),
                    det["boxes"][sure].float().cpu().numpy(),
                    det["scores"][sure].float().cpu().numpy(),
                    det["labels"][sure].cpu().numpy(),
                )
            )
    return out


def write_predictions(
    predictions: Sequence[Prediction], out: Path, fmt: str, class_names: Sequence[str] | None
) -> Path:
    """``predictions.json`` (one entry per image), ``predictions.coco.json`` (COCO results
    with image ids 1..N in input order, plus the image list) or ``predictions.csv``."""
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        path = out / "predictions.json"
        path.write_text(json.dumps([p.to_json(class_names) for p in predictions], indent=1))
    elif fmt == "coco":
        path = out / "predictions.coco.json"
        results = coco_results(
            [
                {"image_id": i, "boxes": p.boxes, "scores": p.scores, "labels": p.labels}
                for i, p in enumerate(predictions, start=1)
            ]
        )
        images = [
            {"id": i, "file_name": str(p.path), "width": p.width, "height": p.height}
            for i, p in enumerate(predictions, start=1)
        ]
        path.write_text(json.dumps({"images": images, "annotations": results}))
    elif fmt == "csv":
        path = out / "predictions.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image_path", "xmin", "ymin", "xmax", "ymax", "label", "score"])
            for p in predictions:
                for b, s, c in zip(
                    p.boxes.tolist(), p.scores.tolist(), p.labels.tolist(), strict=True
                ):
                    name = label_name(class_names, c)
                    writer.writerow([str(p.path), *(f"{v:.2f}" for v in b), name, f"{s:.5f}"])
    else:
        raise ValueError(f"unknown output format {fmt!r}; choose json, coco or csv")
    return path


def save_drawn(
    predictions: Sequence[Prediction],
    out: Path,
    class_names: Sequence[str] | None,
    exif: bool = True,
) -> None:
    """Each image with its boxes, class names and scores, under ``out``."""
    from ..evaluation.plots import draw_detections

    out.mkdir(parents=True, exist_ok=True)
    stems = Counter(p.path.stem for p in predictions)
    for i, p in enumerate(predictions):
        # Inputs from different folders may share a name: number those so none overwrites.
        name = p.path.stem if stems[p.path.stem] == 1 else f"{i:05d}_{p.path.stem}"
        drawn = draw_detections(
            to_pil(load_image(p.path, exif)), p.boxes, p.labels, class_names or [], p.scores
        )
        drawn.save(out / f"{name}.jpg", quality=92)
