"""Reading weight files safely: safetensors, or torch files loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor


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
