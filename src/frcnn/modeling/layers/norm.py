"""Normalisation layers by name: frozen BatchNorm for fine-tuning, BatchNorm, GroupNorm."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import FrozenBatchNorm2d

from ...errors import InputError


class FrozenBN(FrozenBatchNorm2d):
    """torchvision's FrozenBatchNorm2d (same buffers and state-dict keys) computed by the
    fused inference BatchNorm kernel: one pass over the feature map instead of two."""

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )


def group_count(channels: int) -> int:
    """GroupNorm groups for ``channels``: 32, or the largest count below that divides them."""
    return math.gcd(32, channels)


NORMS: dict[str, Callable[[int], nn.Module]] = {
    # Fine-tuning from pretrained weights: statistics and affine parameters stay fixed.
    "frozen_bn": FrozenBN,
    # Training from scratch with reasonable batch sizes.
    "bn": nn.BatchNorm2d,
    # BatchNorm whose statistics are computed over every process of a multi-GPU (torchrun)
    # run: built as BatchNorm (same weights and keys), converted by the trainer under DDP.
    "syncbn": nn.BatchNorm2d,
    # Training from scratch with small batches, where batch statistics are noisy.
    # 32 groups, or the largest count below that divides the channels (MobileNet's 24, 40).
    "gn": lambda channels: nn.GroupNorm(group_count(channels), channels),
}


def norm_layer(name: str) -> Callable[[int], nn.Module]:
    """The norm-layer factory called ``name``.

    Raises:
        ValueError: unknown name.
    """
    if name not in NORMS:
        raise InputError(f"unknown norm {name!r}; choose one of {sorted(NORMS)}")
    return NORMS[name]
