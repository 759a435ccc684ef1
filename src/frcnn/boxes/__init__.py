"""Box structures: pure box math, IoU matching and sampling of anchors and proposals."""

from .ops import DEFAULT_DELTA_CLAMP, BoxCoder, box_area, box_iou, clip_boxes, remove_small_boxes

__all__ = [
    "DEFAULT_DELTA_CLAMP",
    "BoxCoder",
    "box_area",
    "box_iou",
    "clip_boxes",
    "remove_small_boxes",
]
