"""Pure, vectorised box math.

Every function here takes and returns boxes as ``FloatTensor[N, 4]`` in
``(x1, y1, x2, y2)`` absolute pixel coordinates unless its docstring says
otherwise. Nothing here loops over boxes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchvision.ops import box_area, box_iou

__all__ = [
    "BoxCoder",
    "DEFAULT_DELTA_CLAMP",
    "box_area",
    "box_iou",
    "clip_boxes",
    "remove_small_boxes",
]

# Largest allowed dw/dh before exp(): a box may grow at most 1000/16 times per decode step,
# which keeps exp() finite for untrained or diverging regressors.
DEFAULT_DELTA_CLAMP = math.log(1000.0 / 16)


class BoxCoder:
    """Encodes boxes as ``(dx, dy, dw, dh)`` deltas relative to reference boxes and back.

    ``dx = wx * (gx - rx) / rw``, ``dy = wy * (gy - ry) / rh``, ``dw = ww * log(gw / rw)``,
    ``dh = wh * log(gh / rh)`` where ``(x, y)`` are box centres and ``(w, h)`` sizes.

    Args:
        weights: the ``(wx, wy, ww, wh)`` multipliers; ``(1, 1, 1, 1)`` for the RPN and
            ``(10, 10, 5, 5)`` for the box head by convention.
        delta_clamp: upper bound applied to ``dw`` and ``dh`` before ``exp`` when decoding.
    """

    def __init__(
        self,
        weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
        delta_clamp: float = DEFAULT_DELTA_CLAMP,
    ) -> None:
        self.weights = tuple(float(w) for w in weights)
        self.delta_clamp = float(delta_clamp)

    def encode(self, gt_boxes: Tensor, reference_boxes: Tensor) -> Tensor:
        """Deltas that move ``reference_boxes`` onto ``gt_boxes``.

        Args:
            gt_boxes: FloatTensor[N, 4] targets.
            reference_boxes: FloatTensor[N, 4] anchors or proposals, paired row by row.

        Returns:
            FloatTensor[N, 4] of ``(dx, dy, dw, dh)``.
        """
        wx, wy, ww, wh = self.weights
        rx1, ry1, rx2, ry2 = reference_boxes.unbind(-1)
        gx1, gy1, gx2, gy2 = gt_boxes.unbind(-1)
        rw = rx2 - rx1
        rh = ry2 - ry1
        rcx = rx1 + 0.5 * rw
        rcy = ry1 + 0.5 * rh
        gw = gx2 - gx1
        gh = gy2 - gy1
        gcx = gx1 + 0.5 * gw
        gcy = gy1 + 0.5 * gh
        dx = wx * (gcx - rcx) / rw
        dy = wy * (gcy - rcy) / rh
        dw = ww * torch.log(gw / rw)
        dh = wh * torch.log(gh / rh)
        return torch.stack((dx, dy, dw, dh), dim=-1)

    def decode(self, deltas: Tensor, reference_boxes: Tensor) -> Tensor:
        """Apply deltas to reference boxes.

        Args:
            deltas: FloatTensor[N, K*4]: K sets of ``(dx, dy, dw, dh)`` per reference box
                (K = 1 for the RPN, K = number of classes for class-specific box heads).
            reference_boxes: FloatTensor[N, 4].

        Returns:
            FloatTensor[N, K*4] of decoded boxes, laid out like ``deltas``.
        """
        reference_boxes = reference_boxes.to(deltas.dtype)
        wx, wy, ww, wh = self.weights
        widths = reference_boxes[:, 2] - reference_boxes[:, 0]
        heights = reference_boxes[:, 3] - reference_boxes[:, 1]
        ctr_x = reference_boxes[:, 0] + 0.5 * widths
        ctr_y = reference_boxes[:, 1] + 0.5 * heights

        # (N, K*4) -> four (N, K) views, one per delta kind.
        dx = deltas[:, 0::4] / wx
        dy = deltas[:, 1::4] / wy
        dw = (deltas[:, 2::4] / ww).clamp(max=self.delta_clamp)
        dh = (deltas[:, 3::4] / wh).clamp(max=self.delta_clamp)

        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        half_w = 0.5 * (torch.exp(dw) * widths[:, None])
        half_h = 0.5 * (torch.exp(dh) * heights[:, None])
        boxes = torch.stack(
            (pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h),
            dim=2,
        )
        # (N, K, 4) -> (N, K*4)
        return boxes.flatten(1)


def clip_boxes(boxes: Tensor, image_size: tuple[int, int]) -> Tensor:
    """Clip boxes to an image of ``(height, width)``; works on any ``[..., 4]`` tensor."""
    height, width = image_size
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    # (..., 2) and (..., 2) -> (..., 2, 2) -> (..., 4) as x1, y1, x2, y2
    return torch.stack((x, y), dim=-1).reshape(boxes.shape)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes whose width and height are both at least ``min_size``."""
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    return torch.where((widths >= min_size) & (heights >= min_size))[0]
