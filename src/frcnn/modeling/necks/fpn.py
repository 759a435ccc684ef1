"""Feature pyramid network: top-down pathway with lateral connections, plus a pooled top level."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class FeaturePyramidNetwork(nn.Module):
    """Lateral 1x1 convs, nearest-neighbour top-down sum, 3x3 output convs.

    With ``extra_pool`` a further level is made by a stride-2 max-pool (kernel 1) of the
    coarsest output, as in Faster R-CNN's P6.

    Args:
        in_channels: channels of each input level, finest first.
        out_channels: channels of every output level.
        extra_pool: add the max-pooled top level.
    """

    def __init__(
        self, in_channels: Sequence[int], out_channels: int = 256, extra_pool: bool = True
    ) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels
        )
        self.extra_pool = extra_pool
        for conv in (*self.lateral, *self.output):
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Input levels FloatTensor[N, C_l, H_l, W_l] finest first -> output levels with
        ``out_channels`` each (one more when ``extra_pool``)."""
        top = self.lateral[-1](features[-1])
        outputs = [self.output[-1](top)]
        for idx in range(len(features) - 2, -1, -1):
            lateral = self.lateral[idx](features[idx])
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
            outputs.insert(0, self.output[idx](top))
        if self.extra_pool:
            outputs.append(F.max_pool2d(outputs[-1], kernel_size=1, stride=2, padding=0))
        return outputs
