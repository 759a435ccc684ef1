"""Model files: safetensors weights with the build configuration and class names as metadata."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .._version import __version__
from ..modeling.builder import ModelConfig, build_from_config
from ..modeling.detector import FasterRCNN
from .atomic import atomic_write

FORMAT = "frcnn.model"
# 1: frcnn 0.1.0 (ResNet-FPN only; no "neck" in the configuration).
# 2: the backbone and neck are named in the configuration ("neck", "extra_levels").
FORMAT_VERSION = "2"


def save_model(
    model: FasterRCNN, path: str | os.PathLike, class_names: Sequence[str] | None = None
) -> Path:
    """Write ``model`` to a ``.safetensors`` file that :func:`load_model` can rebuild alone.

    Args:
        model: a detector built by :func:`frcnn.build_model` (it carries ``model.config``).
        path: destination; written atomically (temporary file, then rename).
        class_names: optional names of classes 1..K-1 (background excluded), or of all K
            classes when the first is the background.
    """
    if not model.config:
        raise ValueError("model has no build configuration: build it with frcnn.build_model")
    names = list(class_names) if class_names is not None else getattr(model, "class_names", None)
    if names is not None and len(names) not in (model.num_classes - 1, model.num_classes):
        raise ValueError(
            f"{len(names)} class names for a model of {model.num_classes} classes "
            f"(give {model.num_classes - 1} names, background excluded)"
        )
    if names is not None and len(names) == model.num_classes:
        names = names[1:]
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.config),
        "class_names": json.dumps(names),
    }
    return atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))


def _migrate_v1(config: dict) -> dict:
    """Version 1 files hold ResNet-FPN models: name the neck and its extra level."""
    return {**config, "neck": "fpn", "extra_levels": 1}


# Version -> function that turns that version's configuration into the next version's.
MIGRATIONS = {"1": _migrate_v1}


def migrate_config(config: dict, version: str, path: str | os.PathLike) -> dict:
    """The configuration of a model file of ``version``, brought up to :data:`FORMAT_VERSION`.

    Raises:
        ValueError: a version this frcnn does not know (a newer frcnn wrote the file), or
            configuration keys it does not know.
    """
    while version != FORMAT_VERSION:
        if version not in MIGRATIONS:
            raise ValueError(
                f"{path}: model file format version {version!r} is not one this frcnn "
                f"({__version__}, format {FORMAT_VERSION}) can read; upgrade frcnn "
                "(pip install -U frcnn)"
            )
        config = MIGRATIONS[version](config)
        version = str(int(version) + 1)
    unknown = sorted(set(config) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        raise ValueError(
            f"{path}: unknown model configuration keys {unknown}; was it written by a newer "
            "frcnn? Upgrade frcnn (pip install -U frcnn)"
        )
    return config


def read_metadata(path: str | os.PathLike) -> tuple[ModelConfig, list[str] | None]:
    """The build configuration (migrated to the current format) and class names stored in a
    model file."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT or "config" not in meta:
        raise ValueError(
            f"{path} is not an frcnn model file (no frcnn metadata); for a torchvision "
            "checkpoint use `frcnn convert-weights`"
        )
    config = migrate_config(json.loads(meta["config"]), meta.get("format_version", "1"), path)
    config.pop("pretrained_backbone", None)  # the weights are in the file: never download
    return ModelConfig(**config), json.loads(meta.get("class_names", "null"))


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> FasterRCNN:
    """Rebuild a detector from a file written by :func:`save_model`, in eval mode.

    ``model.class_names`` holds the stored names (or None).
    """
    config, class_names = read_metadata(path)
    model = build_from_config(config)
    with safe_open(str(path), framework="pt", device="cpu") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    model.load_state_dict(state)
    model.class_names = class_names
    return model.to(device).eval()
