"""Writing datasets in any supported format (``frcnn data convert``)."""

from __future__ import annotations

import csv
import logging
import os
import shutil
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from .check import DataReport, check_dataset
from .coco import write_coco
from .csv_format import write_csv
from .records import DetectionDataset
from .voc import write_voc
from .yolo import write_yolo

if TYPE_CHECKING:
    from .hf import HFRows

WRITE_FORMATS = ("coco", "yolo", "voc", "csv")

log = logging.getLogger("frcnn")


def _unify_classes(splits: dict[str, DetectionDataset]) -> None:
    """Give every split the same class list (union by name, first-seen order), relabelling."""
    names: list[str] = []
    for ds in splits.values():
        names += [n for n in ds.class_names if n not in names]
    for ds in splits.values():
        mapping = np.array([0] + [names.index(n) + 1 for n in ds.class_names], np.int64)
        for rec in ds.images:
            rec.labels = mapping[rec.labels]
        ds.class_names = list(names)


def _flat_names(ds: DetectionDataset) -> list[str]:
    """Output file names: the base name, or the whole relative path joined by '__' where
    base names collide."""
    bases = [PurePosixPath(r.file_name).name for r in ds.images]
    counts = Counter(bases)
    return [
        b if counts[b] == 1 else r.file_name.replace("/", "__").lstrip("._")
        for b, r in zip(bases, ds.images, strict=True)
    ]


def _unique_names(splits: dict[str, DetectionDataset], shared: bool) -> dict[str, list[str]]:
    """Output names whose stems never collide (case-insensitively) within one output folder:
    formats key labels by stem (``x.png`` and ``x.jpg`` would share ``x.txt``/``x.xml``), and
    VOC puts every split in one folder. A colliding name gets ``__2``, ``__3`` ..."""
    used: dict[str, set[str]] = {}
    names: dict[str, list[str]] = {}
    for split, ds in splits.items():
        taken = used.setdefault("all" if shared else split, set())
        names[split] = []
        for name in _flat_names(ds):
            stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
            candidate, n = name, 2
            while PurePosixPath(candidate).stem.lower() in taken:
                candidate, n = f"{stem}__{n}{suffix}", n + 1
            taken.add(PurePosixPath(candidate).stem.lower())
            names[split].append(candidate)
    return names


def _write_renames(
    splits: dict[str, DetectionDataset], names: dict[str, list[str]], out: Path
) -> None:
    """``renamed.csv`` (split, source file, output file) for every image whose output name
    differs from its source file name, so nothing is silently merged or lost."""
    rows = [
        (split, rec.file_name, name)
        for split, ds in splits.items()
        for rec, name in zip(ds.images, names[split], strict=True)
        if PurePosixPath(rec.file_name).name != name
    ]
    if not rows:
        return
    out.mkdir(parents=True, exist_ok=True)
    with (out / "renamed.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "source", "output"])
        writer.writerows(rows)
    log.warning(
        "%d images renamed so that no two share an output name; see %s",
        len(rows),
        out / "renamed.csv",
    )


def _place(rec, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    if rec.image is not None:
        rec.image.save(dst)
        return
    try:
        os.link(rec.path, dst)
    except OSError:
        shutil.copy2(rec.path, dst)


def write_dataset(
    splits: dict[str, DetectionDataset], out: str | Path, to: str
) -> dict[str, DataReport]:
    """Check each split (images by header), then write the usable images and boxes to
    ``out`` in format ``to``, copying (or hard-linking) the images. Returns each split's
    report: what was fixed, skipped and dropped on the way."""
    if to not in WRITE_FORMATS:
        raise InputError(f"cannot write format {to!r}; choose one of {WRITE_FORMATS}")
    out = Path(out)
    reports, clean = {}, {}
    for name, ds in splits.items():
        clean[name], reports[name] = check_dataset(ds, images="header")
    _unify_classes(clean)
    image_names: dict[str, dict[int, str]] = {}
    single = len(clean) == 1
    unique = _unique_names(clean, shared=to == "voc")
    for split, ds in clean.items():
        flat = unique[split]
        if to == "coco":
            folder = "images" if single else ("valid" if split == "val" else split)
            rel = [f"{folder}/{n}" for n in flat]
        elif to == "voc":
            rel = [f"JPEGImages/{n}" for n in flat]
        else:
            rel = [f"images/{split}/{n}" for n in flat]
        image_names[split] = dict(enumerate(rel))
        for rec, r in zip(ds.images, rel, strict=True):
            _place(rec, out / r)
    _write_renames(clean, unique, out)
    if to == "coco":
        for split, ds in clean.items():
            if single:
                write_coco(ds, out / "annotations.json", image_names[split])
            else:
                folder = "valid" if split == "val" else split
                names = {i: n.split("/", 1)[1] for i, n in image_names[split].items()}
                write_coco(ds, out / folder / "_annotations.coco.json", names)
    elif to == "yolo":
        write_yolo(clean, out, image_names)
    elif to == "voc":
        write_voc(clean, out, image_names)
    else:
        write_csv(clean, out, image_names)
    return reports


def write_streamed(rows: HFRows, out: str | Path, to: str) -> dict[str, DataReport]:
    """Write a streamed split (``hf:``) to ``out`` in format ``to`` with bounded memory: each
    row's encoded image is written as it streams (to ``out/.streamed``, hard-linked into
    place and removed at the end), keeping only the boxes, then written as
    :func:`write_dataset` writes files."""
    if to not in WRITE_FORMATS:
        raise InputError(f"cannot write format {to!r}; choose one of {WRITE_FORMATS}")
    staging = Path(out) / ".streamed"
    staging.mkdir(parents=True, exist_ok=True)
    kept = []
    try:
        for n, row in enumerate(rows):
            rec = row.record
            if rec.image is not None:
                rec.path = staging / f"{n:09d}{Path(rec.file_name).suffix}"
                if row.data:
                    rec.path.write_bytes(row.data)
                else:
                    shutil.copyfile(str(row.path), rec.path)
                rec.image, row.data = None, None
            kept.append(row)
        ds = rows.dataset(kept)
        ds.root = staging
        return write_dataset({rows.split: ds}, out, to)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
