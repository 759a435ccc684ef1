"""Tiled inference for large images: detections of overlapping tiles merged across seams."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torchvision.ops import batched_nms

from ..boxes.overlap import box_area, box_ioa
from ..data.tiles import tile_windows
from ..defaults import BATCH_SIZE
from ..engine.distributed import DistInfo
from .ranks import gather, share

Detector = Callable[[list[torch.Tensor]], list[dict[str, torch.Tensor]]]


def batched(items: Sequence, size: int) -> Iterator[Sequence]:
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
    common = torch.promote_types(boxes.dtype, scores.dtype)  # calibrated scores: float64
    keep = batched_nms(boxes.to(common), scores.to(common), labels, iou_threshold)
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
    ranks: DistInfo | None = None,
) -> dict[str, torch.Tensor]:
    """Run ``detector`` on overlapping tiles of a CHW image and merge the detections so an
    object on a seam is reported once (see :func:`merge_tiles`). With ``ranks`` (a torchrun
    job, every rank calling with the same image) each rank runs every ``world_size``-th
    batch of tiles and the merge sees every tile's detections in tile order, as one process does."""
    height, width = image.shape[-2:]
    windows = tile_windows(width, height, tile, overlap)
    mine = share(range(len(windows)), ranks, batch_size)
    part = []
    for chunk in batched(mine, batch_size):
        crops = [_crop(image, windows[i]) for i, _ in chunk]
        for (i, _), det in zip(chunk, detector(crops), strict=True):
            part.append((i, _placed(det, windows[i], width, height, edge)))
    if ranks is not None and ranks.enabled:
        part = [(i, tuple(t.cpu() for t in found)) for i, found in part]
    boxes, scores, labels, cut = (torch.cat(t) for t in zip(*gather(part, ranks), strict=True))
    keep = merge_tiles(boxes, scores, labels, cut)
    order = scores[keep].argsort(descending=True)
    keep = keep[order]
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]}


def _crop(image: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    x1, y1, x2, y2 = (int(v) for v in window.tolist())
    return image[:, y1:y2, x1:x2]


def _placed(
    det: dict[str, torch.Tensor], window: torch.Tensor, width: int, height: int, edge: float
) -> tuple[torch.Tensor, ...]:
    """A tile's detections in the image's pixels: boxes, scores, labels, and whether each
    touches an edge of the tile that is not an edge of the image (possibly cut)."""
    x1, y1, x2, y2 = window.tolist()
    b = det["boxes"] + torch.tensor(
        [x1, y1, x1, y1], dtype=det["boxes"].dtype, device=det["boxes"].device
    )
    inner = torch.tensor([x1 > 0, y1 > 0, x2 < width, y2 < height], device=b.device)
    at_edge = torch.stack(
        [b[:, 0] <= x1 + edge, b[:, 1] <= y1 + edge, b[:, 2] >= x2 - edge, b[:, 3] >= y2 - edge],
        1,
    )
    return b, det["scores"], det["labels"], (at_edge & inner).any(1)
