"""Feature pyramid network: top-down pathway with lateral connections, plus pooled top levels."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import InputError
from ..backbones.base import FeatureLevel, check_levels
from .base import NECKS


class FeaturePyramidNetwork(nn.Module):
    """Lateral 1x1 convs, nearest-neighbour top-down sum, 3x3 output convs (with ``norm``
    "bn": each conv without bias and followed by a BatchNorm, as in torchvision's v2 model).

    Each extra level is a stride-2 max-pool (kernel 1) of the coarsest output, as in Faster
    R-CNN's P6; extra levels feed the RPN only (``pooled=False``).

    Args:
        in_channels: channels of each input level, finest first.
        out_channels: channels of every output level.
        extra_pool: add one max-pooled top level (the same as ``extra_levels=1``).
        in_strides: strides of the input levels (for the declared ``levels``); default
            4, 8, 16 ... for a ResNet-style body.
        extra_levels: how many max-pooled levels to add (overrides ``extra_pool``).
        norm: None for plain convolutions, "bn" for convolution + BatchNorm pairs.

    Attributes:
        levels: the declared output levels (see :mod:`frcnn.modeling.backbones.base`).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int = 256,
        extra_pool: bool = True,
        in_strides: Sequence[int] | None = None,
        extra_levels: int | None = None,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if norm not in (None, "bn"):
            raise InputError(f"FPN norm {norm!r}: choose None or 'bn'")
        self.lateral = nn.ModuleList(_conv(c, out_channels, 1, norm) for c in in_channels)
        self.output = nn.ModuleList(_conv(out_channels, out_channels, 3, norm) for _ in in_channels)
        self.extra_levels = int(extra_pool) if extra_levels is None else extra_levels
        for conv in self.modules():
            if isinstance(conv, nn.Conv2d):
                nn.init.kaiming_uniform_(conv.weight, a=1)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
        strides = list(in_strides or [4 * 2**i for i in range(len(in_channels))])
        self.levels = pyramid_levels(strides, out_channels, self.extra_levels, "FPN")

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Input levels FloatTensor[N, C_l, H_l, W_l] finest first -> output levels with
        ``out_channels`` each (plus ``extra_levels`` max-pooled ones)."""
        top = self.lateral[-1](features[-1])
        outputs = [self.output[-1](top)]
        for idx in range(len(features) - 2, -1, -1):
            lateral = self.lateral[idx](features[idx])
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
            outputs.insert(0, self.output[idx](top))
        for _ in range(self.extra_levels):
            outputs.append(F.max_pool2d(outputs[-1], kernel_size=1, stride=2, padding=0))
        return outputs


def _conv(in_channels: int, out_channels: int, kernel: int, norm: str | None) -> nn.Module:
    """A "same"-padded convolution, or (``norm`` "bn") one without bias and a BatchNorm."""
    if norm is None:
        return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


def pyramid_levels(
    strides: Sequence[int], channels: int, extra_levels: int, owner: str
) -> tuple[FeatureLevel, ...]:
    """A neck's declared levels: one per input stride (pooled), then ``extra_levels`` coarser
    ones at twice the stride each (RPN only), all with ``channels``."""
    extra = [strides[-1] * 2 ** (i + 1) for i in range(extra_levels)]
    all_strides = [*strides, *extra]
    levels = [
        FeatureLevel(name, channels, s, pooled=i < len(strides))
        for i, (name, s) in enumerate(zip(_level_names(all_strides), all_strides, strict=True))
    ]
    return check_levels(levels, owner)


def _level_names(strides: Sequence[int]) -> list[str]:
    """``p<log2 stride>``, with ``a``, ``b`` ... after levels that share a stride."""
    logs = [f"p{s.bit_length() - 1}" for s in strides]
    return [
        f"{n}{chr(ord('a') + logs[:i].count(n))}" if logs.count(n) > 1 else n
        for i, n in enumerate(logs)
    ]


@NECKS.register("fpn")
def build_fpn(
    levels: Sequence[FeatureLevel], out_channels: int, extra_levels: int, norm: str | None = None
) -> FeaturePyramidNetwork:
    """An FPN over every backbone level (``norm`` "bn": convolutions followed by BatchNorm)."""
    return FeaturePyramidNetwork(
        [lv.channels for lv in levels],
        out_channels,
        in_strides=[lv.stride for lv in levels],
        extra_levels=extra_levels,
        norm=norm,
    )


# torchvision's fasterrcnn_resnet50_fpn_v2 neck.
NECKS.register("fpn_bn", functools.partial(build_fpn, norm="bn"))
