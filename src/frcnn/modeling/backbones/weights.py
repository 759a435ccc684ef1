"""Backbone weights: a published checkpoint downloaded once into the torch hub cache, or a
local file."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from ...errors import InputError, SetupError
from ...io.checkpoint import load_state_dict_file
from .base import BackboneSpec

log = logging.getLogger("frcnn")


def load_backbone_weights(name: str, source: str, spec: BackboneSpec) -> dict[str, Tensor]:
    """The state dict for backbone ``name``: ``source="imagenet"`` downloads its published
    ImageNet weights (cached: torchvision's from ``spec.pretrained_url`` into the torch hub
    cache, timm's through ``spec.fetch_pretrained`` into the Hugging Face cache); any other
    ``source`` is a path to a ``.safetensors``/``.pth`` state dict.

    Raises:
        ValueError: ``imagenet`` asked for a backbone without published weights.
        RuntimeError: the download failed; the message says how to proceed offline.
    """
    if source != "imagenet":
        return load_state_dict_file(source)
    if spec.pretrained_url is None and spec.fetch_pretrained is None:
        raise InputError(
            f"no published ImageNet weights for backbone {name!r}; pass "
            "pretrained_backbone=PATH with a local weights file (frcnn pretrain-backbone "
            "makes one), or None"
        )
    url = spec.pretrained_url
    try:
        if url is None:
            return spec.fetch_pretrained()
        return torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=True, weights_only=True
        )
    except OSError as err:  # URLError, HTTPError, socket and hub errors are all OSErrors
        if url is None:
            where = (
                f"{spec.pretrained_source}. Connect to the internet and retry (the files are "
                f"cached under {_hf_cache()}), "
            )
        else:
            cache = Path(torch.hub.get_dir()) / "checkpoints"
            where = (
                f"{url}. Connect to the internet and retry, or copy "
                f"{url.rsplit('/', 1)[-1]} into {cache}, "
            )
        raise SetupError(
            f"could not download the ImageNet weights for {name} ({type(err).__name__}) from "
            f"{where}or pass pretrained_backbone=PATH with a local weights file, or "
            "pretrained_backbone=None to train from random initialisation."
        ) from err


def _hf_cache() -> str:
    """The Hugging Face hub cache folder (where timm keeps downloaded weights)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return "~/.cache/huggingface/hub"
    return str(constants.HF_HUB_CACHE)


def load_matching(module: nn.Module, weights: dict[str, Tensor], what: str) -> None:
    """Load every tensor of ``weights`` whose name and shape match ``module``'s, and report
    the rest: weights the module lacks (unexpected), parameters the weights lack (missing,
    left at their initialisation) and shape mismatches. Batch-norm step counters are not
    counted.

    Raises:
        ValueError: nothing matches (the file is not weights for this backbone).
    """
    own = module.state_dict()

    def counted(keys: list[str]) -> list[str]:
        return [k for k in keys if not k.endswith("num_batches_tracked")]

    matched = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    wrong = counted([k for k in weights if k in own and own[k].shape != weights[k].shape])
    unexpected = counted([k for k in weights if k not in own])
    missing = counted([k for k in own if k not in weights])
    if not counted(list(matched)):
        example = ", ".join(list(weights)[:3])
        raise InputError(
            f"{what}: none of the {len(weights)} tensors fit this backbone (e.g. {example}); "
            "is it the right file?"
        )
    module.load_state_dict(matched, strict=False)
    report = f"{what}: {len(counted(list(matched)))} tensors loaded"
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            report += (
                f"; {len(keys)} {label} ({', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''})"
            )
    (log.warning if missing or unexpected or wrong else log.info)("%s", report)
