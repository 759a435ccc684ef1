"""Mosaic augmentation: four training images (or tiles) in one, as YOLO trains.

The four meet at a random centre inside the middle half of the first image's frame; each
keeps its own scale (the other three are resized to the first's longest side) and shows the
corner that touches the centre. Boxes move with their image, are clipped to its quarter and
kept when at least ``min_visibility`` of them shows (as for tiles); the boxes cut below that
are counted. Uncovered canvas is gray (114), as in Ultralytics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes.overlap import boxes_in_window

FILL = 114

# (image, boxes [N, 4] xyxy, labels [N], ignore [N]) of one part.
Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _quarters(width: int, height: int, cx: int, cy: int) -> np.ndarray:
    """Canvas windows (x1, y1, x2, y2) of the four parts: top-left, top-right, bottom-left,
    bottom-right of the centre."""
    return np.array(
        [[0, 0, cx, cy], [cx, 0, width, cy], [0, cy, cx, height], [cx, cy, width, height]]
    )


def combine(
    parts: list[Part], centre: tuple[int, int], min_visibility: float, fill: int = FILL
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The mosaic of four ``parts`` on the first one's frame, meeting at ``centre`` (x, y
    pixels): ``(image, boxes, labels, ignore, dropped)``, ``dropped`` counting the trained
    boxes cut by a quarter's edge below ``min_visibility`` (boxes wholly outside the shown
    corner are not in this item, as with a crop)."""
    first = parts[0][0]
    height, width = first.shape[:2]
    cx, cy = centre
    canvas = np.full((height, width, *first.shape[2:]), fill, first.dtype)
    out_boxes, out_labels, out_ignore, dropped = [], [], [], 0
    for k, ((image, boxes, labels, ignore), window) in enumerate(
        zip(parts, _quarters(width, height, cx, cy), strict=True)
    ):
        h, w = image.shape[:2]
        # the corner of this image that touches the centre sits on it
        ox = cx - w if k in (0, 2) else cx
        oy = cy - h if k in (0, 1) else cy
        x1, y1, x2, y2 = window.tolist()
        sx1, sy1 = max(x1, ox), max(y1, oy)
        sx2, sy2 = min(x2, ox + w), min(y2, oy + h)
        if sx2 > sx1 and sy2 > sy1:
            canvas[sy1:sy2, sx1:sx2] = image[sy1 - oy : sy2 - oy, sx1 - ox : sx2 - ox]
        shown = np.array([sx1, sy1, max(sx1, sx2), max(sy1, sy2)], np.float32)
        moved = np.asarray(boxes, np.float32).reshape(-1, 4) + np.array([ox, oy, ox, oy])
        clipped, keep = boxes_in_window(moved, shown, min_visibility)
        overlapping = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
        dropped += int((overlapping & ~keep & ~ignore).sum())
        # clipped boxes are in the window's frame; back to the canvas's
        out_boxes.append(clipped[keep] + np.concatenate([shown[:2], shown[:2]]))
        out_labels.append(labels[keep])
        out_ignore.append(ignore[keep])
    return (
        canvas,
        np.concatenate(out_boxes).astype(np.float32),
        np.concatenate(out_labels),
        np.concatenate(out_ignore),
        dropped,
    )


@dataclass
class Mosaic:
    """When and with what a training item becomes a mosaic: with probability ``p``, with
    three other items drawn at random and a centre in the middle half of the frame; the
    draws depend only on (seed, epoch, item), so a resumed run repeats them."""

    p: float
    seed: int = 0
    min_visibility: float = 0.3
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def draw(self, index: int, n: int) -> tuple[list[int], tuple[float, float]] | None:
        """The three partner items of item ``index`` (of ``n``) and the centre as fractions
        of the frame, or None when the item stays a single image."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if n < 2 or rng.random() >= self.p:
            return None
        partners = rng.integers(0, n, size=3).tolist()
        return partners, (float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.25, 0.75)))
