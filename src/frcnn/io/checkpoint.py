"""Reading weight files safely: safetensors, or torch files loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from .atomic import atomic_write


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """A state dict from ``.safetensors`` or a ``.pth``/``.pt`` file (loaded with
    ``weights_only=True``; training checkpoints holding it under ``model`` or
    ``state_dict`` are unwrapped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (found {type(state).__name__})")
    return state


def atomic_torch_save(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` through :func:`~frcnn.io.atomic.atomic_write`: a process killed
    mid-save leaves the previous file intact, never a truncated one."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_training_state(path: str | os.PathLike) -> dict:
    """A training-state file (optimiser, scheduler, RNG states, ...), read with
    ``weights_only=True``: plain containers and tensors only."""
    path = Path(path)
    return torch.load(path, map_location="cpu", weights_only=True)
