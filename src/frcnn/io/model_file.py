"""Model files: safetensors weights with the build configuration and class names as metadata."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..modeling.builder import ModelConfig, build_from_config
from ..modeling.detector import FasterRCNN

FORMAT = "frcnn.model"
FORMAT_VERSION = "1"


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(state, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_metadata(path: str | os.PathLike) -> tuple[ModelConfig, list[str] | None]:
    """The build configuration and class names stored in a model file."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT or "config" not in meta:
        raise ValueError(
            f"{path} is not an frcnn model file (no frcnn metadata); for a torchvision "
            "checkpoint use `frcnn convert-weights`"
        )
    config = json.loads(meta["config"])
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
