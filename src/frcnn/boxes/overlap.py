"""Box overlap, once for NumPy and torch: intersection, IoU, IoA of xyxy boxes, and the IoU
of centred boxes given by width and height (anchor fitting).

Every function takes two sets of boxes, ``[N, 4]`` and ``[M, 4]`` xyxy (NumPy arrays or
tensors, both the same kind), and returns ``[N, M]``. The detector's own hot path uses
torchvision's ``box_iou`` (re-exported by :mod:`frcnn.boxes`) for parity with torchvision.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Boxes = TypeVar("Boxes", np.ndarray, torch.Tensor)

# Guards divisions by empty areas; far below any real box area in pixels.
EPS = 1e-12


def box_area(boxes: Boxes) -> Boxes:
    """Areas [N] of xyxy boxes."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_intersection(a: Boxes, b: Boxes) -> Boxes:
    """Intersection areas [N, M]."""
    if isinstance(a, torch.Tensor):
        lt = torch.maximum(a[:, None, :2], b[None, :, :2])
        rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
        wh = (rb - lt).clamp(min=0)
    else:
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        wh = np.clip(rb - lt, 0, None)
    return wh[..., 0] * wh[..., 1]


def _safe(x: Boxes) -> Boxes:
    return x.clamp(min=EPS) if isinstance(x, torch.Tensor) else np.maximum(x, EPS)


def box_iou(a: Boxes, b: Boxes) -> Boxes:
    """Intersection over union [N, M]."""
    inter = box_intersection(a, b)
    return inter / _safe(box_area(a)[:, None] + box_area(b)[None, :] - inter)


def box_ioa(a: Boxes, b: Boxes) -> Boxes:
    """Intersection over the area of each box of ``a`` [N, M]: the share of box ``a[i]``
    that lies inside ``b[j]``."""
    return box_intersection(a, b) / _safe(box_area(a)[:, None])


def wh_iou(wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU [N, A] of boxes and anchors given as ``(w, h)``, sharing a centre."""
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(
        wh[:, None, 1], anchors[None, :, 1]
    )
    union = (wh[:, 0] * wh[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None, :] - inter
    return inter / union


def boxes_in_window(
    boxes: np.ndarray, window: np.ndarray, min_visibility: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to a window, in window coordinates, and the mask of those whose visible
    fraction of their area is at least ``min_visibility``."""
    clipped = np.concatenate(
        [np.maximum(boxes[:, :2], window[:2]), np.minimum(boxes[:, 2:], window[2:])], 1
    )
    visible = box_ioa(boxes, window[None])[:, 0]
    keep = (visible > 0) & (visible >= min_visibility)
    return clipped - np.tile(window[:2], 2), keep
