"""Backbone weights: a published checkpoint downloaded once into the torch hub cache, or a
local file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ...io.checkpoint import load_state_dict_file


def load_backbone_weights(name: str, source: str, url: str | None) -> dict[str, Tensor]:
    """The state dict for backbone ``name``: ``source="imagenet"`` downloads ``url`` (cached);
    any other ``source`` is a path to a ``.safetensors``/``.pth`` state dict.

    Raises:
        ValueError: ``imagenet`` asked for a backbone without published weights.
        RuntimeError: the download failed; the message says how to proceed offline.
    """
    if source != "imagenet":
        return load_state_dict_file(source)
    if url is None:
        raise ValueError(
            f"no published ImageNet weights for backbone {name!r}; pass "
            "pretrained_backbone=PATH with a local weights file, or None"
        )
    try:
        return torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=True, weights_only=True
        )
    except OSError as err:  # URLError, HTTPError, socket errors are all OSErrors
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise RuntimeError(
            f"could not download the ImageNet weights for {name} from {url} ({err}). "
            f"Connect to the internet and retry, or copy {url.rsplit('/', 1)[-1]} into {cache}, "
            f"or pass pretrained_backbone=PATH with a local weights file, or "
            f"pretrained_backbone=None to train from random initialisation."
        ) from err
