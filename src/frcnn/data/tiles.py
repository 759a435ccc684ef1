"""A tiled view of a dataset: large images cut into overlapping crops for training."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from .augment import Augmenter
from .loader import DetectionTorchDataset, read_record_image
from .records import DetectionDataset


def tile_windows(width: int, height: int, tile: int, overlap: float) -> np.ndarray:
    """Windows [T, 4] (x1, y1, x2, y2) of side ``tile`` covering the image, neighbours
    overlapping by ``overlap`` of a tile; the last row/column is aligned to the image edge.
    An image smaller than a tile is one window of its own size."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")

    def starts(length: int) -> np.ndarray:
        if length <= tile:
            return np.array([0])
        step = max(1, int(round(tile * (1 - overlap))))
        s = np.arange(0, length - tile, step)
        return np.unique(np.append(s, length - tile))

    xs, ys = starts(width), starts(height)
    x1, y1 = np.meshgrid(xs, ys)
    x1, y1 = x1.reshape(-1), y1.reshape(-1)
    return np.stack(
        [x1, y1, np.minimum(x1 + tile, width), np.minimum(y1 + tile, height)], 1
    ).astype(np.float32)


def boxes_in_window(
    boxes: np.ndarray, window: np.ndarray, min_visibility: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to a window, in window coordinates, and the mask of those whose visible
    fraction of their area is at least ``min_visibility``."""
    clipped = np.concatenate(
        [np.maximum(boxes[:, :2], window[:2]), np.minimum(boxes[:, 2:], window[2:])], 1
    )
    inter = np.clip(clipped[:, 2] - clipped[:, 0], 0, None) * np.clip(
        clipped[:, 3] - clipped[:, 1], 0, None
    )
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = (inter > 0) & (inter >= min_visibility * area)
    return clipped - np.tile(window[:2], 2), keep


class TiledDataset(DetectionTorchDataset):
    """Every image cut into ``tile`` x ``tile`` crops with ``overlap``; each crop is an item.

    A box cut by a tile edge is kept (clipped) in that tile when at least ``min_visibility``
    of it is visible there, otherwise dropped from that tile. ``report`` counts the boxes
    clipped and dropped per tile, and ``boxes_lost``: boxes visible enough in no tile at all.

    Args:
        ds: checked records (image sizes known).
        tile: tile side in pixels.
        overlap: fraction of a tile shared by neighbours.
        min_visibility: smallest visible fraction for a cut box to be kept.
        augment: applied to each tile after cropping.
    """

    def __init__(
        self,
        ds: DetectionDataset,
        tile: int,
        overlap: float = 0.2,
        min_visibility: float = 0.5,
        augment: Augmenter | None = None,
        exif: bool = True,
    ) -> None:
        super().__init__(ds, augment, None, exif)
        self.tile = tile
        self.min_visibility = min_visibility
        self.items: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self.report: Counter = Counter()
        for index, rec in enumerate(ds.images):
            seen = np.zeros(rec.num_boxes, bool)
            for window in tile_windows(rec.width, rec.height, tile, overlap):
                boxes, keep = boxes_in_window(rec.boxes, window, min_visibility)
                whole = (
                    keep
                    & (rec.boxes[:, :2] >= window[:2]).all(1)
                    & (rec.boxes[:, 2:] <= window[2:]).all(1)
                )
                cut = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # overlaps the tile
                self.report["tiles"] += 1
                self.report["boxes_clipped"] += int((keep & ~whole).sum())
                self.report["boxes_dropped"] += int((cut & ~keep).sum())
                seen |= keep
                self.items.append((index, window, boxes, keep))
            self.report["boxes_lost"] += int((~seen).sum())

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        index, window, boxes, keep = self.items[i]
        rec = self.ds.images[index]
        image = read_record_image(rec, self.exif)
        x1, y1, x2, y2 = window.astype(int).tolist()
        crop = np.ascontiguousarray(image[y1:y2, x1:x2])
        return self.make_item(
            crop, boxes[keep], rec.labels[keep], (rec.iscrowd | rec.ignore)[keep], rec.image_id
        )
