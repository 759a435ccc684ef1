"""Devices and mixed precision, resolved from plain names at the edges."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from ..errors import InputError


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; any other name is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware: a CUDA GPU that supports it, or a
    CPU with AVX512-BF16 or AMX (elsewhere oneDNN emulates bf16, slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_amp(device: torch.device, amp: str) -> str:
    """``amp`` as the trainer runs it: ``auto`` is bf16 where the device computes it natively
    (see :func:`native_bf16`), else fp16 on CUDA and none elsewhere."""
    if amp != "auto":
        return amp
    if native_bf16(device):
        return "bf16"
    return "fp16" if device.type == "cuda" else "none"


def autocast_context(device: torch.device, amp: str) -> AbstractContextManager:
    """The autocast context for ``amp`` (``none``, ``fp16`` on CUDA, ``bf16``)."""
    if amp == "none":
        return nullcontext()
    if amp == "fp16":
        if device.type != "cuda":
            raise InputError("amp=fp16 needs a CUDA device; use amp=bf16 on CPU")
        return torch.autocast("cuda", dtype=torch.float16)
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise InputError(f"unknown amp mode {amp!r}; choose none, auto, fp16 or bf16")
