"""Reading weight files safely: safetensors, or torch files loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from ..errors import InputError
from .atomic import atomic_write
from .file_kind import describe_kind, file_kind


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """A state dict from ``.safetensors`` or a ``.pth``/``.pt`` file (loaded with
    ``weights_only=True``; training checkpoints holding it under ``model`` or
    ``state_dict`` are unwrapped)."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "missing":
        raise FileNotFoundError(f"weights file not found: {path}")
    if kind == "safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # safetensors' own error type for damaged files
            raise InputError(f"{path}: damaged safetensors file ({err})") from None
    if kind != "torch":
        raise InputError(describe_kind(path, kind))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or non-weights pickle: many error types
        raise InputError(
            f"{path}: cannot read it as PyTorch weights ({type(err).__name__}: {err}); only "
            "plain tensors and containers are loaded (weights_only=True)"
        ) from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise InputError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return state


def atomic_torch_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` through :func:`~frcnn.io.atomic.atomic_write`: a process killed
    mid-save leaves the previous file intact, never a truncated one."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_training_state(path: str | os.PathLike) -> dict:
    """A training-state file (optimiser, scheduler, RNG states, ...), read with
    ``weights_only=True``: plain containers and tensors only."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or hostile pickle: many error types, nothing runs
        raise InputError(
            f"{path}: not a training state frcnn can resume from ({type(err).__name__}: "
            f"{str(err).strip().splitlines()[0] if str(err).strip() else err!r}); only plain "
            "tensors and containers are loaded (weights_only=True). Start a new run, or "
            "resume from the run's own weights/last.state.pt"
        ) from None
    if not isinstance(state, dict):
        raise InputError(f"{path}: not a training state frcnn wrote (a {type(state).__name__})")
    return state
