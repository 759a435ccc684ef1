"""Reduced-precision PyTorch inference: the heavy layers in bfloat16, the box arithmetic in
float32.

Under ``bf16`` the backbone with its neck, the RPN's 3x3 convolution and the box head's
fully connected layers (nearly all of the arithmetic) run under bfloat16 autocast and hand
float32 back; anchors, box decoding, NMS and the class-specific regression stay float32, so
boxes keep their pixel precision. Scores and boxes change slightly (bfloat16 keeps about 3
significant digits), so it is a choice behind a flag (``--precision bf16``) whose accuracy
cost ``frcnn benchmark --formats pytorch,pytorch-bf16 --data DATA`` measures. On a CPU with
AVX512-BF16 or AMX it about halves the time; elsewhere bfloat16 is emulated and slower.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn

from ..defaults import PRECISIONS
from ..engine.device import native_bf16
from ..errors import InputError

log = logging.getLogger("frcnn")


def to_dtype(value: object, dtype: torch.dtype = torch.float32) -> object:
    """``value`` with every floating tensor in it (lists, tuples, dicts) as ``dtype``."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, Mapping):
        return type(value)((k, to_dtype(v, dtype)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(to_dtype(v, dtype) for v in value)
    return value


class Bf16(nn.Module):
    """``inner`` run under bfloat16 autocast on its own device, its outputs float32."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: object, **kwargs: object) -> object:
        device = next(self.inner.parameters()).device
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return to_dtype(self.inner(*args, **kwargs))


class Half(nn.Module):
    """``inner`` with float16 weights, given float16 inputs, its outputs float32: explicit
    casts (not autocast), so that an exported graph holds them."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.half()

    def forward(self, *args: object) -> object:
        return to_dtype(self.inner(*to_dtype(args, torch.float16)))


def heavy_layers(model: nn.Module, wrap: type[nn.Module]) -> None:
    """Wrap (in place) what computes nearly all of a detector's arithmetic: the backbone
    with its neck, the RPN's shared convolutions and the box head."""
    model.backbone = wrap(model.backbone)
    if isinstance(getattr(model.rpn.head, "conv", None), nn.Module):
        model.rpn.head.conv = wrap(model.rpn.head.conv)
        extra = getattr(model.rpn.head, "extra_convs", ())
        model.rpn.head.extra_convs = nn.ModuleList(wrap(conv) for conv in extra)
    model.roi_heads.box_head = wrap(model.roi_heads.box_head)


def with_precision(model: nn.Module, precision: str = "fp32") -> nn.Module:
    """``model`` (changed in place) computing in ``precision``: ``fp32`` leaves it as it is;
    ``bf16`` wraps its heavy layers (see the module doc) and sets ``model.precision``.

    Raises:
        ValueError: an unknown precision.
    """
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if precision == "fp32" or getattr(model, "precision", "fp32") == precision:
        return model
    device = next(model.parameters()).device
    if not native_bf16(device):
        log.warning(
            "warning: this %s has no native bfloat16 (AVX512-BF16/AMX or a bf16 GPU): "
            "--precision bf16 is emulated here and slower than fp32",
            device.type,
        )
    heavy_layers(model, Bf16)
    model.precision = precision
    return model
