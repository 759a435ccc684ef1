"""K-fold splits by image: stratified by class presence, grouped so that related images
(tiles of one picture, scans of one patient) never land on both sides of a split.

Stratification follows the iterative method of Sechidis, Tsoumakas and Vlahavas (2011),
applied to groups instead of single images: the rarest class is placed first, each group
going to the fold that still wants that class most (then the fold that wants the most
images), so every fold sees every class when the data allow it. Images without objects
count as a class of their own, so empty images spread over the folds too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import numpy as np

from ..data.records import DetectionDataset
from ..errors import InputError

# What ``--group-by`` accepts besides a regular expression.
GROUP_KEYWORDS = ("source_image", "folder", "field:NAME")

# A tile's suffix on its source image's name: frcnn's window ``@x,y``, or ``_x_y`` /
# ``_x1_y1_x2_y2`` (SAHI and most slicing scripts), or ``_tile3`` / ``_tile_3``.
TILE_SUFFIX = re.compile(r"(@\d+,\d+|(?:[_-]\d+){2}(?:[_-]\d+){0,2}|[_-]tile[_-]?\d+)$")


def group_keys(ds: DetectionDataset, group_by: str | None) -> list[str]:
    """One key per image of ``ds``; images sharing a key stay in one fold.

    ``group_by``: None (every image on its own); ``source_image`` (the file name without
    its extension and tile suffix, see :data:`TILE_SUFFIX`); ``folder`` (the image's
    folder); ``field:NAME`` (the COCO image entry's field NAME, e.g. ``field:patient_id``);
    anything else is a regular expression searched in the file name, the key being its
    first group (or the whole match when it has none).

    Raises:
        ValueError: an image the rule gives no key, naming it.
    """
    names = [r.file_name for r in ds.images]
    if group_by is None:
        return names
    if group_by == "source_image":
        return [_source_image(n) for n in names]
    if group_by == "folder":
        return [str(PurePosixPath(n).parent) for n in names]
    if group_by.startswith("field:"):
        return _field_keys(ds, group_by.removeprefix("field:"))
    return _regex_keys(names, group_by)


def _source_image(name: str) -> str:
    path = PurePosixPath(name)
    return str(path.parent / TILE_SUFFIX.sub("", path.stem))


def _regex_keys(names: list[str], pattern: str) -> list[str]:
    try:
        rule = re.compile(pattern)
    except re.error as err:
        raise InputError(
            f"--group-by {pattern!r} is neither one of {', '.join(GROUP_KEYWORDS)} nor a "
            f"valid regular expression ({err})"
        ) from None
    keys = []
    for name in names:
        found = rule.search(name)
        if found is None:
            unmatched = sum(rule.search(n) is None for n in names)
            raise InputError(
                f"--group-by {pattern!r} does not match image {name} ({unmatched} of "
                f"{len(names)} images unmatched); every image needs a group"
            )
        keys.append(found.group(1) if rule.groups else found.group(0))
    return keys


def _field_keys(ds: DetectionDataset, field: str) -> list[str]:
    """The COCO image entries' ``field`` for each record, read from the annotation file."""
    if ds.format != "coco" or not ds.source.endswith(".json"):
        raise InputError(
            f"--group-by field:{field} reads COCO image entries; {ds.source} is "
            f"{ds.format or 'not COCO'} (group by a regular expression on file names instead)"
        )
    entries = json.loads(Path(ds.source).read_text()).get("images", [])
    values = {str(e.get("file_name")): e.get(field) for e in entries if isinstance(e, dict)}
    keys = []
    for rec in ds.images:
        value = values.get(rec.file_name)
        if value is None:
            raise InputError(
                f"--group-by field:{field}: image {rec.file_name} in {ds.source} has no "
                f"{field!r} field"
            )
        keys.append(str(value))
    return keys


def class_presence(ds: DetectionDataset) -> np.ndarray:
    """Bool [N images, K + 1]: column c - 1 is class c present (crowd and ignored boxes
    excluded); the last column marks images without any object."""
    presence = np.zeros((len(ds), len(ds.class_names) + 1), bool)
    for i, rec in enumerate(ds.images):
        labels = rec.labels[~(rec.iscrowd | rec.ignore)]
        presence[i, labels - 1] = True
    presence[:, -1] = ~presence[:, :-1].any(1)
    return presence


def kfold_assign(
    ds: DetectionDataset, folds: int, group_by: str | None = None, seed: int = 0
) -> np.ndarray:
    """Int64 [N]: the fold (0..folds-1) that holds each image out, stratified by class
    presence and grouped by :func:`group_keys`.

    Raises:
        ValueError: fewer than 2 folds, or fewer groups than folds.
    """
    if folds < 2:
        raise InputError(f"--folds must be at least 2, got {folds}")
    keys = group_keys(ds, group_by)
    unique, group_of = np.unique(np.asarray(keys, dtype=object), return_inverse=True)
    if len(unique) < folds:
        what = f"groups (--group-by {group_by})" if group_by else "images"
        raise InputError(f"{folds} folds need at least {folds} {what}; the data has {len(unique)}")
    presence = class_presence(ds).astype(np.int64)
    counts = np.zeros((len(unique), presence.shape[1]), np.int64)  # images per group and class
    np.add.at(counts, group_of, presence)
    sizes = np.bincount(group_of, minlength=len(unique))
    group_fold = _stratify(counts, sizes, folds, np.random.default_rng(seed))
    return group_fold[group_of]


def _stratify(
    counts: np.ndarray, sizes: np.ndarray, folds: int, rng: np.random.Generator
) -> np.ndarray:
    """Iterative stratification of groups: fold per group (see the module docstring)."""
    want = np.tile(counts.sum(0) / folds, (folds, 1)).astype(np.float64)  # (folds, C)
    want_images = np.full(folds, sizes.sum() / folds)
    fold = np.full(len(sizes), -1, np.int64)
    left = np.ones(len(sizes), bool)
    while left.any():
        totals = counts[left].sum(0)
        rarest = int(np.argmin(np.where(totals > 0, totals, np.iinfo(np.int64).max)))
        chosen = np.flatnonzero(left & (counts[:, rarest] > 0))
        for g in rng.permutation(chosen):
            score = np.stack([want[:, rarest], want_images, rng.random(folds)], 1)
            f = int(np.lexsort(score.T[::-1])[-1])  # most wanted class, then images, then luck
            fold[g], left[g] = f, False
            want[f] -= counts[g]
            want_images[f] -= sizes[g]
    return fold


def fold_subsets(
    ds: DetectionDataset, assign: np.ndarray, fold: int
) -> tuple[DetectionDataset, DetectionDataset]:
    """``(training images, held-out images)`` of ``fold`` as datasets sharing ``ds``'s root
    and classes."""
    held = assign == fold
    return images_where(ds, ~held), images_where(ds, held)


def images_where(ds: DetectionDataset, keep: np.ndarray) -> DetectionDataset:
    """The images of ``ds`` where ``keep`` (bool, one per image) is set, as a dataset
    sharing its root and classes."""
    images = [r for r, k in zip(ds.images, keep, strict=True) if k]
    return DetectionDataset(ds.root, ds.class_names, images, source=ds.source, format=ds.format)
