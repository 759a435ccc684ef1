"""Assign each prediction (anchor or proposal) to at most one ground-truth box."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import InputError

# Match labels returned by :class:`Matcher`, alongside the matched ground-truth index.
BACKGROUND = 0  # IoU below the low threshold
IGNORE = -1  # IoU between the thresholds: neither foreground nor background
FOREGROUND = 1


class Matcher:
    """IoU-threshold matcher.

    A prediction whose best IoU is ``>= high`` is foreground, ``< low`` background, and in
    between ignored. With ``allow_low_quality_matches``, every ground-truth box also claims
    the predictions that overlap it best (ties included), even below ``high``, so that no
    ground truth is left without a match.

    Args:
        high: foreground IoU threshold.
        low: background IoU threshold (``low <= high``).
        allow_low_quality_matches: see above.
    """

    def __init__(self, high: float, low: float, allow_low_quality_matches: bool = False) -> None:
        if low > high:
            raise InputError(f"Matcher: low threshold {low} is above high threshold {high}")
        self.high = high
        self.low = low
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, iou: Tensor) -> tuple[Tensor, Tensor]:
        """Match predictions to ground truth.

        Args:
            iou: FloatTensor[G, P], IoU of each of G ground-truth boxes with each of P
                predictions. G may be 0.

        Returns:
            ``(matched_idx, labels)``: Int64Tensor[P] with the index of the best
            ground-truth box per prediction (0 when G == 0), and Int8Tensor[P] with
            :data:`FOREGROUND`, :data:`BACKGROUND` or :data:`IGNORE`.
        """
        num_gt, num_pred = iou.shape
        if num_gt == 0:
            matched = torch.zeros(num_pred, dtype=torch.int64, device=iou.device)
            labels = torch.full((num_pred,), BACKGROUND, dtype=torch.int8, device=iou.device)
            return matched, labels

        best_iou, matched = iou.max(dim=0)
        labels = torch.full((num_pred,), FOREGROUND, dtype=torch.int8, device=iou.device)
        labels[best_iou < self.high] = IGNORE
        labels[best_iou < self.low] = BACKGROUND

        if self.allow_low_quality_matches:
            # For each gt, the predictions with its highest IoU (all of them when tied) become
            # foreground, keeping their own best gt as the match.
            best_per_gt = iou.max(dim=1, keepdim=True).values
            pred_idx = torch.where(iou == best_per_gt)[1]
            labels[pred_idx] = FOREGROUND
        return matched, labels
