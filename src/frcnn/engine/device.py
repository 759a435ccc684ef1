"""Devices and mixed precision, resolved from plain names at the edges."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; any other name is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_context(device: torch.device, amp: str) -> AbstractContextManager:
    """The autocast context for ``amp`` (``none``, ``fp16`` on CUDA, ``bf16``)."""
    if amp == "none":
        return nullcontext()
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("amp=fp16 needs a CUDA device; use amp=bf16 on CPU")
        return torch.autocast("cuda", dtype=torch.float16)
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"unknown amp mode {amp!r}; choose none, fp16 or bf16")
