"""Attention on feature maps: CBAM (Woo et al., ECCV 2018) and its spatial half.

CBAM reweights a feature map twice: per channel (a shared two-layer MLP over the
channel's average and maximum over space) and then per position (a 7x7 convolution over
the average and maximum over channels). Each costs a few thousand parameters and next to
no compute, and lets the detector emphasise object regions of a pyramid level.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...errors import InputError

ATTENTIONS = ("none", "cbam", "spatial")


class ChannelAttention(nn.Module):
    """``x * sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))``, one weight per channel."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        avg = self.mlp(x.mean((2, 3), keepdim=True))
        peak = self.mlp(x.amax((2, 3), keepdim=True))
        return x * torch.sigmoid(avg + peak)


class SpatialAttention(nn.Module):
    """``x * sigmoid(conv7x7([mean_c(x), max_c(x)]))``, one weight per position."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Channel attention, then spatial attention."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.spatial(self.channel(x))


def build_attention(kind: str, channels: int) -> nn.Module | None:
    """The attention block ``kind`` for a map of ``channels`` (None for ``"none"``).

    Raises:
        ValueError: an unknown kind, naming the known ones.
    """
    if kind not in ATTENTIONS:
        raise InputError(f"unknown attention {kind!r}; choose one of {', '.join(ATTENTIONS)}")
    if kind == "cbam":
        return CBAM(channels)
    if kind == "spatial":
        return SpatialAttention()
    return None
