"""Published COCO-trained detectors by name: ``coco:NAME`` wherever a model file is taken.

The weights are torchvision's, fetched by torch.hub into its cache under torchvision's own
file name (the hash in the name is checked on download; a file already in the cache is used
as it is, without network access) and loaded with ``weights_only``. The COCO model keeps
torchvision's 91 outputs (background and 90 category ids, ten of which are placeholders
COCO never used); the placeholders are never reported.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError, SetupError
from ..modeling.catalog import (
    COCO_CATEGORIES,
    COCO_PREFIX,
    COCO_WEIGHTS,
    COCO_WEIGHTS_BASE,
    is_coco,
)
from ..modeling.detector import FasterRCNN

log = logging.getLogger("frcnn")

# torchvision's name for a COCO category id no image uses.
PLACEHOLDER = "N/A"


def coco_name(weights: str | os.PathLike) -> str:
    """The model named by ``coco:NAME``.

    Raises:
        ValueError: a model without published COCO weights, naming those that have them.
    """
    name = os.fspath(weights)
    name = name.removeprefix(COCO_PREFIX)
    if name not in COCO_WEIGHTS:
        raise InputError(
            f"no published COCO weights for model {name!r}; these have them: "
            f"{', '.join(f'coco:{n}' for n in COCO_WEIGHTS)}"
        )
    return name


def coco_url(name: str) -> str:
    return COCO_WEIGHTS_BASE + COCO_WEIGHTS[coco_name(name)]


def cache_path(name: str) -> Path:
    """Where torch.hub keeps (or will keep) the COCO weights of ``name``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / COCO_WEIGHTS[coco_name(name)]


def coco_file(weights: str | os.PathLike) -> Path:
    """The local file of ``coco:NAME``'s weights: torch.hub's cached copy, downloaded into
    the cache (its hash checked, as ``torch.hub.load_state_dict_from_url`` does) when it is
    not there yet.

    Raises:
        RuntimeError: the download failed; the message gives the URL and the exact path to
            put the file at.
    """
    name = coco_name(weights)
    path = cache_path(name)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", coco_url(name), path)
    try:
        torch.hub.download_url_to_file(coco_url(name), str(path), hash_prefix=_hash(name))
    except OSError as err:  # URLError, HTTPError, socket errors are all OSErrors
        raise SetupError(
            f"could not download the COCO weights of {name} ({type(err).__name__}): download "
            f"{coco_url(name)} and put it at {path}"
        ) from err
    return path


def _hash(name: str) -> str:
    """The SHA-256 prefix in a published file's name (``...-258fb6c6.pth``)."""
    return COCO_WEIGHTS[name].rsplit("-", 1)[-1].split(".")[0]


def coco_state_dict(weights: str | os.PathLike) -> dict[str, Tensor]:
    """torchvision's COCO state dict of ``coco:NAME``, loaded with ``weights_only``.

    Raises:
        ValueError: the cached file is damaged (saying how to replace it).
    """
    path = coco_file(weights)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle or zip errors of a damaged or truncated file
        raise InputError(
            f"{path}: not a readable weights file ({err}); delete it and download "
            f"{coco_url(coco_name(weights))} again"
        ) from None


def weights_file(weights: str | os.PathLike) -> Path:
    """The file behind a weights argument: ``coco:NAME``'s cached file, or the path itself."""
    return coco_file(weights) if is_coco(weights) else Path(weights)


def output_base(weights: str | os.PathLike) -> Path:
    """What files made from a weights argument are named after: the model file itself, or
    for ``coco:NAME`` a ``NAME_coco.safetensors`` in the working folder (never the cache)."""
    if is_coco(weights):
        return Path(f"{coco_name(weights)}_coco.safetensors")
    return Path(weights)


def coco_categories() -> list[str]:
    """The 91 COCO category names by id (``__background__`` first, ``N/A`` for the ids COCO
    never used), as torchvision's COCO models predict them."""
    return list(COCO_CATEGORIES)


def coco_model(weights: str | os.PathLike, overrides: dict[str, Any] | None = None) -> FasterRCNN:
    """The COCO-trained detector ``coco:NAME`` in eval mode: torchvision's weights converted,
    its 80 category names (and placeholders, never reported) as ``class_names``."""
    from .convert import model_from_torchvision

    name = coco_name(weights)
    categories = coco_categories()
    placeholders = [i for i, c in enumerate(categories) if c == PLACEHOLDER]
    options = {"placeholder_classes": placeholders, **(overrides or {})}
    model = model_from_torchvision(coco_state_dict(weights), name, **options)
    model.class_names = categories[1:]
    model.calibration = None
    model.conf = None
    return model.eval()
