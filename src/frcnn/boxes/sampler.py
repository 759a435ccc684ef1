"""Balanced foreground/background sampling of match labels for the loss."""

from __future__ import annotations

import torch
from torch import Tensor

from .matcher import BACKGROUND, FOREGROUND


def subsample_labels(
    labels: Tensor, num_samples: int, positive_fraction: float
) -> tuple[Tensor, Tensor]:
    """Pick at most ``num_samples`` items, at most ``positive_fraction`` of them foreground.

    When there are too few foreground items the rest is filled with background; ignored
    items are never picked. Random choice uses torch's global generator.

    Args:
        labels: Int8Tensor[P] of :data:`~frcnn.matcher.FOREGROUND`, ``BACKGROUND`` or
            ``IGNORE`` per item.
        num_samples: total items wanted.
        positive_fraction: the largest share of foreground items.

    Returns:
        ``(pos_idx, neg_idx)``: Int64Tensors of sampled foreground and background indices.
    """
    positive = torch.where(labels == FOREGROUND)[0]
    negative = torch.where(labels == BACKGROUND)[0]
    num_pos = min(positive.numel(), int(num_samples * positive_fraction))
    num_neg = min(negative.numel(), num_samples - num_pos)
    perm_pos = torch.randperm(positive.numel(), device=positive.device)[:num_pos]
    perm_neg = torch.randperm(negative.numel(), device=negative.device)[:num_neg]
    return positive[perm_pos], negative[perm_neg]
