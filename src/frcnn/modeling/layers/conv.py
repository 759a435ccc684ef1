"""Convolution, normalisation and activation as one block: the unit CSP networks are built of."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


class ConvNormAct(nn.Sequential):
    """``conv -> norm -> activation`` with "same" padding (``kernel // 2``) and no conv bias
    (the norm has one).

    Args:
        norm: a factory from :data:`frcnn.modeling.layers.norm.NORMS` (channels -> module).
        act: ``True`` for SiLU, ``False`` for none.
        groups: grouped convolution (``in_channels`` and ``out_channels`` divisible by it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        norm: Callable[[int], nn.Module],
        stride: int = 1,
        act: bool = True,
        groups: int = 1,
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride,
                kernel_size // 2,
                groups=groups,
                bias=False,
            ),
            norm(out_channels),
            nn.SiLU(inplace=True) if act else nn.Identity(),
        )
