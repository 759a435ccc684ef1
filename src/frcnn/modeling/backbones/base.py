"""The backbone contract: what every feature extractor gives the rest of the detector.

A **backbone** is an ``nn.Module`` that

- takes ``FloatTensor[N, 3, H, W]``, normalised and padded by
  :class:`~frcnn.modeling.transform.ImageTransform` (``H`` and ``W`` multiples of
  ``size_divisible``, 32 by default; the memory format may be channels-last);
- returns a ``list[Tensor]``, one ``FloatTensor[N, C_l, H_l, W_l]`` per declared level, finest
  first, in NCHW logical layout (a transformer body that computes NHWC must permute), with
  ``H_l = ceil(H / stride_l)`` and ``W_l = ceil(W / stride_l)``;
- declares those levels as data in ``levels``: a tuple of :class:`FeatureLevel` (name,
  channels, stride), strides powers of two that never decrease (two levels may share a
  stride, as torchvision's MobileNetV3 FPN takes two stride-32 outputs);
- declares ``extra_levels``: how many coarser levels the neck should add on top (Faster
  R-CNN's max-pooled P6 for a ResNet is one).

A **neck** (:mod:`frcnn.modeling.necks`) is built from the backbone's ``levels`` and declares
its own output ``levels`` the same way. Every level it returns gets anchors (one level of
``anchor_sizes`` each); the levels marked ``pooled`` are the ones RoIs are pooled from. The
RPN head and the box head are built from those declarations, never from literal channel
counts or strides.

Register a backbone with :data:`BACKBONES` (see :class:`BackboneSpec`); nothing else needs
editing for :func:`frcnn.build_model` to build it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor, nn

from ...errors import InputError
from ..registry import Registry


@dataclass(frozen=True)
class FeatureLevel:
    """One output level of a backbone or neck.

    Attributes:
        name: e.g. ``"c3"`` for a backbone stage, ``"p3"`` for a pyramid level.
        channels: channels of the feature map.
        stride: input pixels per feature-map cell (a power of two).
        pooled: RoIs are pooled from this level (False for extra levels used by the RPN only).
    """

    name: str
    channels: int
    stride: int
    pooled: bool = True


def check_levels(levels: Sequence[FeatureLevel], owner: str) -> tuple[FeatureLevel, ...]:
    """``levels`` as a tuple after checking the contract: at least one level, strides powers of
    two that never decrease, positive channels.

    Raises:
        ValueError: naming ``owner`` and the offending levels.
    """
    levels = tuple(levels)
    if not levels:
        raise InputError(f"{owner}: declares no feature levels")
    strides = [lv.stride for lv in levels]
    if any(s < 1 or 2 ** round(math.log2(s)) != s for s in strides):
        raise InputError(f"{owner}: level strides must be powers of two, got {strides}")
    if any(b < a for a, b in zip(strides, strides[1:], strict=False)):
        raise InputError(f"{owner}: level strides must not decrease, finest first, got {strides}")
    if any(lv.channels < 1 for lv in levels):
        raise InputError(f"{owner}: every level needs channels >= 1, got {levels}")
    return levels


class Backbone(Protocol):
    """What the neck and the detector rely on (see the module docstring)."""

    levels: tuple[FeatureLevel, ...]
    extra_levels: int

    def __call__(self, x: Tensor) -> list[Tensor]: ...


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a registered backbone.

    Attributes:
        build: ``build(norm=..., trainable_layers=..., weights=..., checkpointing=...)``
            returning a module that honours the contract. ``weights`` is a state dict or None.
        max_trainable_layers: the largest meaningful ``trainable_layers`` (stages counted
            from the output back to the stem).
        pretrained_url: where ``pretrained_backbone="imagenet"`` downloads from (None: no
            published weights at a URL).
        fetch_pretrained: for weights published another way (timm's hub entries): returns
            the ImageNet state dict, raising ``OSError`` when it cannot be downloaded.
        pretrained_source: where ``fetch_pretrained`` gets them, for error messages.
    """

    build: Callable[..., nn.Module]
    max_trainable_layers: int
    pretrained_url: str | None = None
    fetch_pretrained: Callable[[], dict] | None = None
    pretrained_source: str | None = None


BACKBONES: Registry[BackboneSpec] = Registry("backbone")
