"""Model files: safetensors weights with the build configuration and class names as metadata."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .._version import __version__
from ..errors import InputError
from ..modeling.builder import ModelConfig, build_from_config, check_config_values
from ..modeling.detector import FasterRCNN
from .atomic import atomic_write
from .file_kind import describe_kind, file_kind

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
        raise InputError("model has no build configuration: build it with frcnn.build_model")
    names = list(class_names) if class_names is not None else getattr(model, "class_names", None)
    if names is not None and len(names) not in (model.num_classes - 1, model.num_classes):
        raise InputError(
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
    calibration = getattr(model, "calibration", None)
    if calibration is not None:
        metadata["calibration"] = json.dumps(calibration)
    conf = getattr(model, "conf", None)
    if conf is not None:
        metadata["conf"] = json.dumps(float(conf))
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
            raise InputError(
                f"{path}: model file format version {version!r} is not one this frcnn "
                f"({__version__}, format {FORMAT_VERSION}) can read; upgrade frcnn "
                "(pip install -U frcnn)"
            )
        config = MIGRATIONS[version](config)
        version = str(int(version) + 1)
    unknown = sorted(set(config) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        raise InputError(
            f"{path}: unknown model configuration keys {unknown}; was it written by a newer "
            "frcnn? Upgrade frcnn (pip install -U frcnn)"
        )
    return config


def _open_metadata(path: str | os.PathLike) -> dict[str, str]:
    kind = file_kind(path)
    if kind != "safetensors":
        raise InputError(describe_kind(path, kind))
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as err:  # safetensors raises its own error type for damaged headers
        raise InputError(f"{path}: damaged safetensors file ({err})") from None


def read_metadata(path: str | os.PathLike) -> tuple[ModelConfig, list[str] | None]:
    """The build configuration (migrated to the current format and checked) and class names
    stored in a model file; nothing is built.

    Raises:
        ValueError: not an frcnn model file (saying what it is), or metadata that is not
            valid (naming the key).
    """
    return _parse_metadata(_open_metadata(path), path)


def _parse_metadata(
    meta: dict[str, str], path: str | os.PathLike
) -> tuple[ModelConfig, list[str] | None]:
    """:func:`read_metadata` of metadata already read."""
    if meta.get("format") != FORMAT or "config" not in meta:
        raise InputError(
            f"{path} is not an frcnn model file (no frcnn metadata); for a torchvision "
            "checkpoint use `frcnn convert-weights`"
        )
    try:
        config = json.loads(meta["config"])
        class_names = json.loads(meta.get("class_names", "null"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: damaged frcnn metadata ({err})") from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: damaged frcnn metadata (the configuration is not a mapping)")
    config = migrate_config(config, meta.get("format_version", "1"), path)
    config.pop("pretrained_backbone", None)  # the weights are in the file: never download
    check_config_values(config, path)
    if class_names is not None and (
        not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names)
    ):
        raise InputError(f"{path}: damaged frcnn metadata (class_names is not a list of names)")
    classes = config.get("num_classes")
    if class_names is not None and isinstance(classes, int) and len(class_names) != classes - 1:
        raise InputError(
            f"{path}: the metadata names {len(class_names)} classes but the model has "
            f"{classes - 1} (num_classes {classes} counts background): the file was edited or "
            "written by something else; save the model again with frcnn.save_model"
        )
    return ModelConfig(**config), class_names


def read_calibration(path: str | os.PathLike) -> dict | None:
    """The score calibration stored in a model file, or None; nothing is built."""
    return _calibration(_open_metadata(path), path)


def _calibration(meta: dict[str, str], path: str | os.PathLike) -> dict | None:
    """The score calibration ``frcnn calibrate`` stored in a model file's metadata, or None.

    Raises:
        ValueError: damaged calibration metadata.
    """
    from ..evaluation.calibration import check_calibration

    text = meta.get("calibration")
    if text is None:
        return None
    try:
        return check_calibration(json.loads(text), str(path))
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: damaged calibration metadata ({err})") from None


def load_model(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    overrides: dict[str, Any] | None = None,
) -> FasterRCNN:
    """Rebuild a detector from a file written by :func:`save_model`, in eval mode; or
    ``coco:NAME``, torchvision's COCO-trained model (see :mod:`frcnn.io.zoo`).

    ``model.class_names`` holds the stored names (or None), ``model.conf`` the stored score
    threshold (or None). ``overrides`` are build options that do not change the weights
    (``box_detections_per_img``, ``box_merge``, ...): the model is built with them, so what
    it does stays what its configuration says.

    Raises:
        ValueError: not an frcnn model file, damaged metadata, or weights that do not fit
            the stored configuration (naming the tensors).
    """
    from .zoo import coco_model, is_coco

    if is_coco(path):
        return coco_model(path, overrides).to(device).eval()
    meta = _open_metadata(path)  # read once: configuration, names and calibration
    config, class_names = _parse_metadata(meta, path)
    if overrides:
        config = dataclasses.replace(config, **overrides)
    model = build_from_config(config)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as err:  # safetensors' own error type for damaged data
        raise InputError(f"{path}: damaged safetensors file ({err})") from None
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise InputError(
            f"{path}: the weights do not fit the stored configuration (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]})"
        )
    model.load_state_dict(state)
    model.class_names = class_names
    model.calibration = _calibration(meta, path)
    model.conf = _conf(meta, path)
    return model.to(device).eval()


def _conf(meta: dict[str, str], path: str | os.PathLike) -> float | None:
    """The score threshold stored with the model (its run's ``eval.conf``), or None.

    Raises:
        ValueError: a stored threshold that is not a number in [0, 1].
    """
    text = meta.get("conf")
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InputError(f"{path}: damaged frcnn metadata (conf={text!r} is not in [0, 1])")
    return float(value)
