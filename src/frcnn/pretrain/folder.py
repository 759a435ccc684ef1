"""Classification data in the class-per-subfolder layout (torchvision's ImageFolder):
``ROOT/<class>/<image>``, or ``ROOT/train/<class>/...`` with ``ROOT/val/<class>/...``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.images import IMAGE_SUFFIXES
from ..errors import InputError


@dataclass
class ImageFolderSplits:
    """Image paths and class indices of the training and validation images.

    Attributes:
        classes: class names (sub-folder names, sorted); index = label.
        train, val: ``(path, label)`` pairs.
        held_out: the validation images were held out of one folder (not a ``val/`` folder).
    """

    classes: list[str]
    train: list[tuple[Path, int]]
    val: list[tuple[Path, int]]
    held_out: bool


def _class_images(root: Path) -> dict[str, list[Path]]:
    """``{class: sorted image paths}`` for each sub-folder of ``root`` (images in deeper
    folders count for their top class; links out of ``root`` are not followed)."""
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES
            and p.is_file()
            and p.resolve().is_relative_to(root.resolve())
        )
        found[folder.name] = images
    return found


def read_image_folder(root: str | Path, val_split: float = 0.2, seed: int = 0) -> ImageFolderSplits:
    """The splits of a class-per-subfolder dataset. With ``train/`` (and ``val/`` or
    ``valid/``) sub-folders those are the splits; otherwise ``val_split`` of each class's
    images (at least one when it has two or more) is held out, chosen with ``seed``.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: fewer than two classes, a class without images, or validation classes
            the training data lacks (each named).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder (expected ROOT/<class>/<images>)")
    val_root = next((root / n for n in ("val", "valid") if (root / n).is_dir()), None)
    if (root / "train").is_dir():
        train = _check(_class_images(root / "train"), root / "train")
        classes = sorted(train)
        val = _check(_class_images(val_root), val_root, 1) if val_root else {}
        unknown = sorted(set(val) - set(classes))
        if unknown:
            raise InputError(f"{val_root}: classes {unknown} have no training folder")
        pairs = lambda split: [(p, classes.index(c)) for c in classes for p in split.get(c, [])]  # noqa: E731
        return ImageFolderSplits(classes, pairs(train), pairs(val), held_out=False)
    found = _check(_class_images(root), root)
    classes = sorted(found)
    rng = np.random.default_rng(seed)
    train_pairs, val_pairs = [], []
    for label, name in enumerate(classes):
        images = found[name]
        n_val = min(len(images) - 1, max(1, round(val_split * len(images)))) if val_split else 0
        chosen = set(rng.permutation(len(images))[:n_val].tolist())
        for i, path in enumerate(images):
            (val_pairs if i in chosen else train_pairs).append((path, label))
    return ImageFolderSplits(classes, train_pairs, val_pairs, held_out=True)


def _check(found: dict[str, list[Path]], root: Path, least: int = 2) -> dict[str, list[Path]]:
    empty = sorted(name for name, images in found.items() if not images)
    if empty:
        raise InputError(f"{root}: class folders without images: {empty}")
    if len(found) < least:
        raise InputError(
            f"{root}: found {len(found)} class folder(s); a classifier needs two or more "
            if least > 1
            else f"{root}: no class folders (layout ROOT/<class>/<images>)"
        )
    return found
