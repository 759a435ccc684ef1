"""Multi-scale RoIAlign: each box is pooled from the pyramid level that suits its size."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import box_area

from ...errors import InputError
from .align_grad import fast_roi_align


def map_levels(
    boxes: Tensor,
    min_level: int,
    max_level: int,
    canonical_size: float = 224.0,
    canonical_level: int = 4,
    eps: float = 1e-6,
) -> Tensor:
    """FPN paper eq. (1): ``k = floor(k0 + log2(sqrt(area) / s0))`` clamped to the pyramid.

    Args:
        boxes: FloatTensor[R, 4] xyxy in input pixels.
        min_level, max_level: pyramid levels available (level k has stride 2**k).
        canonical_size: ``s0``, the box size that maps to ``canonical_level``.
        canonical_level: ``k0``.
        eps: keeps boxes of exactly ``s0 * 2**n`` on level ``k0 + n`` despite rounding.

    Returns:
        Int64Tensor[R] of indices into the pooled levels (0 for ``min_level``).
    """
    size = torch.sqrt(box_area(boxes))
    levels = torch.floor(
        canonical_level + torch.log2(size / canonical_size) + torch.tensor(eps, dtype=size.dtype)
    )
    return (levels.clamp(min=min_level, max=max_level).to(torch.int64) - min_level).to(torch.int64)


class MultiScaleRoIAlign(nn.Module):
    """Pools a fixed-size feature for each box from the pyramid level that suits its size.

    Args:
        strides: the strides of the pooled levels, powers of two, finest first (4, 8, 16, 32
            for P2-P5).
        levels: indices of the pooled levels in the list of feature maps (default: the first
            ``len(strides)``).
        output_size: side of the pooled feature.
        sampling_ratio: RoIAlign sampling points per bin side.
        canonical_size, canonical_level: see :func:`map_levels`.
    """

    def __init__(
        self,
        strides: Sequence[int] = (4, 8, 16, 32),
        output_size: int = 7,
        sampling_ratio: int = 2,
        canonical_size: float = 224.0,
        canonical_level: int = 4,
        levels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.levels = tuple(range(len(strides)) if levels is None else levels)
        if len(self.levels) != len(strides):
            raise InputError(
                f"MultiScaleRoIAlign: {len(strides)} strides but {len(self.levels)} level indices"
            )
        log_strides = [math.log2(s) for s in strides]
        if any(lv != int(lv) for lv in log_strides):
            raise InputError(f"MultiScaleRoIAlign: strides must be powers of two, got {strides}")
        distinct = sorted(set(log_strides))
        if log_strides != sorted(log_strides) or any(
            b != a + 1 for a, b in zip(distinct, distinct[1:], strict=False)
        ):
            raise InputError(
                "MultiScaleRoIAlign: pooled strides must double from level to level (or "
                f"repeat), got {strides}"
            )
        self.strides = tuple(int(s) for s in strides)
        self.min_level = int(distinct[0])
        self.max_level = int(distinct[-1])
        # A box mapped to pyramid level k is pooled from the first level of that stride
        # (torchvision's mapper does the same when two levels share a stride).
        self._first = [log_strides.index(k) for k in distinct]
        self.output_size = (output_size, output_size)
        self.sampling_ratio = sampling_ratio
        self.canonical_size = canonical_size
        self.canonical_level = canonical_level

    def forward(self, features: Sequence[Tensor], boxes: Sequence[Tensor]) -> Tensor:
        """Pool each image's boxes.

        Args:
            features: pyramid levels FloatTensor[N, C, H_l, W_l], finest first; those at
                ``levels`` are used.
            boxes: per image FloatTensor[R_i, 4] xyxy in input pixels.

        Returns:
            FloatTensor[sum R_i, C, S, S], in the order of the concatenated boxes.
        """
        features = [features[i] for i in self.levels]
        all_boxes = torch.cat(list(boxes))
        # Each box's image index, built from the boxes themselves (no Python int of a
        # data-dependent count, so the graph exports with torch.export).
        image_idx = torch.cat([torch.zeros_like(b[:, :1]) + i for i, b in enumerate(boxes)])
        rois = torch.cat([image_idx, all_boxes], dim=1)  # (R, 5): image index, x1, y1, x2, y2
        if len(self._first) == 1:
            return fast_roi_align(
                features[0], rois, self.output_size, 1.0 / self.strides[0], self.sampling_ratio
            )
        levels = map_levels(
            all_boxes, self.min_level, self.max_level, self.canonical_size, self.canonical_level
        )
        levels = torch.tensor(self._first, device=levels.device)[levels]
        first = features[0]
        out = first.new_zeros((rois.shape[0], first.shape[1], *self.output_size))
        for level, (feature, stride) in enumerate(zip(features, self.strides, strict=True)):
            idx = torch.where(levels == level)[0]
            pooled = fast_roi_align(
                feature, rois[idx], self.output_size, 1.0 / stride, self.sampling_ratio
            )
            # Under autocast levels may come back in different dtypes; the copy is not
            # autocast, so cast explicitly. index_copy (not out[idx] = ...): a TorchScript
            # trace of the indexed assignment bakes in the traced image's RoI counts.
            out = out.index_copy(0, idx, pooled.to(out.dtype))
        return out
