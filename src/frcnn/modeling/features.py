"""The detector's feature extractor: a registered backbone body followed by a registered neck."""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import InputError
from .backbones.base import BACKBONES, FeatureLevel, check_levels
from .backbones.weights import load_backbone_weights
from .layers.attention import build_attention
from .necks.base import NECKS


class BodyWithNeck(nn.Module):
    """``body`` (backbone) then ``neck``, then (``attention`` ``cbam`` or ``spatial``) an
    attention block on each pyramid level; the neck is stored under its registered name.

    Attributes:
        levels: the neck's declared output levels (anchors go on each; RoIs are pooled from
            the ``pooled`` ones).
        out_channels: channels of every output level.
        strides: stride of each output level, finest first.
    """

    def __init__(
        self, body: nn.Module, neck_name: str, neck: nn.Module, attention: str = "none"
    ) -> None:
        super().__init__()
        self.body = body
        self.neck_name = neck_name
        self.add_module(neck_name, neck)
        self.levels: tuple[FeatureLevel, ...] = check_levels(neck.levels, f"neck {neck_name!r}")
        channels = {lv.channels for lv in self.levels}
        if len(channels) != 1:
            raise InputError(
                f"neck {neck_name!r}: every output level needs the same channels for the shared "
                f"RPN head, got {[lv.channels for lv in self.levels]}"
            )
        self.out_channels = channels.pop()
        self.strides = tuple(lv.stride for lv in self.levels)
        # One attention block per pyramid level (none: no modules, no state-dict keys).
        blocks = [build_attention(attention, self.out_channels) for _ in self.levels]
        self.attention = nn.ModuleList([b for b in blocks if b is not None])

    @property
    def neck(self) -> nn.Module:
        return getattr(self, self.neck_name)

    def forward(self, x: Tensor) -> list[Tensor]:
        levels = self.neck(self.body(x))
        if len(self.attention):
            levels = [block(level) for block, level in zip(self.attention, levels, strict=True)]
        return levels


def build_features(
    backbone: str,
    neck: str,
    norm: str,
    trainable_layers: int,
    out_channels: int,
    pretrained: str | None = None,
    checkpointing: bool = False,
    extra_levels: int | None = None,
    attention: str = "none",
) -> BodyWithNeck:
    """Build a registered backbone (optionally from pretrained weights, see
    :func:`~frcnn.modeling.backbones.weights.load_backbone_weights`) and a registered neck
    over its declared levels.

    Raises:
        ValueError: unknown backbone or neck name, ``trainable_layers`` out of range, or a
            backbone that breaks the contract.
    """
    spec = BACKBONES.get(backbone)
    neck_builder = NECKS.get(neck)
    if not 0 <= trainable_layers <= spec.max_trainable_layers:
        raise InputError(
            f"trainable_backbone_layers must be in 0..{spec.max_trainable_layers} for "
            f"{backbone}, got {trainable_layers}"
        )
    weights = load_backbone_weights(backbone, pretrained, spec) if pretrained else None
    body = spec.build(
        norm=norm, trainable_layers=trainable_layers, weights=weights, checkpointing=checkpointing
    )
    levels = check_levels(getattr(body, "levels", ()), f"backbone {backbone!r}")
    extra = body.extra_levels if extra_levels is None else extra_levels
    return BodyWithNeck(body, neck, neck_builder(levels, out_channels, extra), attention)
