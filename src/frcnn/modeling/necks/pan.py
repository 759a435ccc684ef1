"""SPP + FPN + PAN neck (YOLOv4's): spatial pyramid pooling on the coarsest level, an FPN
top-down pathway, then PANet's bottom-up path aggregation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..backbones.base import FeatureLevel
from .base import NECKS
from .fpn import pyramid_levels


class SPP(nn.Module):
    """Spatial pyramid pooling (He et al. 2015, as YOLOv4 uses it): a 1x1 conv halves the
    channels, max-pools of 5, 9 and 13 cells (stride 1) are concatenated with it, and a 1x1
    conv fuses them back to ``channels``. The coarsest level sees context of up to 13 cells
    (416 px at stride 32) for the price of two 1x1 convs."""

    def __init__(self, channels: int, kernels: Sequence[int] = (5, 9, 13)) -> None:
        super().__init__()
        hidden = channels // 2
        self.kernels = tuple(kernels)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.fuse = nn.Conv2d(hidden * (len(self.kernels) + 1), channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.reduce(x))
        pooled = [F.max_pool2d(x, k, stride=1, padding=k // 2) for k in self.kernels]
        return F.relu(self.fuse(torch.cat([x, *pooled], 1)))


class PathAggregationNeck(nn.Module):
    """Lateral 1x1 convs (SPP on the coarsest), nearest-neighbour top-down sums smoothed by
    3x3 convs (the FPN's P levels), then a bottom-up path (Liu et al., CVPR 2018): each
    level adds a stride-2 3x3 conv of the finer output and is smoothed by a 3x3 conv, so
    localisation detail of fine levels reaches the coarse ones in a few layers. Extra
    levels are stride-2 max-pools of the coarsest output (RPN only).

    Args:
        in_channels: channels of each backbone level, finest first.
        out_channels: channels of every output level.
        in_strides: strides of the backbone levels.
        extra_levels: max-pooled levels added on top.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        in_strides: Sequence[int],
        extra_levels: int = 1,
    ) -> None:
        super().__init__()
        n = len(in_channels)
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        for conv in self.lateral:
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)
        self.spp = SPP(out_channels)
        self.smooth = nn.ModuleList(_conv3x3(out_channels) for _ in range(n))
        self.down = nn.ModuleList(_conv3x3(out_channels, stride=2) for _ in range(n - 1))
        self.aggregate = nn.ModuleList(_conv3x3(out_channels) for _ in range(n - 1))
        self.extra_levels = extra_levels
        self.levels = pyramid_levels(list(in_strides), out_channels, extra_levels, "PAN")

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Backbone levels, finest first -> the same number of levels with ``out_channels``,
        plus the extra max-pooled ones."""
        top = self.spp(self.lateral[-1](features[-1]))
        merged = [top]
        for idx in range(len(features) - 2, -1, -1):
            lateral = self.lateral[idx](features[idx])
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
            merged.insert(0, top)
        pyramid = [smooth(level) for smooth, level in zip(self.smooth, merged, strict=True)]
        outputs = [pyramid[0]]
        for idx in range(1, len(pyramid)):
            below = F.relu(self.down[idx - 1](outputs[-1]))
            outputs.append(self.aggregate[idx - 1](pyramid[idx] + below))
        for _ in range(self.extra_levels):
            outputs.append(F.max_pool2d(outputs[-1], kernel_size=1, stride=2, padding=0))
        return outputs


def _conv3x3(channels: int, stride: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(channels, channels, 3, stride=stride, padding=1)
    nn.init.kaiming_uniform_(conv.weight, a=1)
    nn.init.zeros_(conv.bias)
    return conv


@NECKS.register("pan")
def build_pan(
    levels: Sequence[FeatureLevel], out_channels: int, extra_levels: int
) -> PathAggregationNeck:
    """An SPP + FPN + PAN neck over every backbone level."""
    return PathAggregationNeck(
        [lv.channels for lv in levels], out_channels, [lv.stride for lv in levels], extra_levels
    )
