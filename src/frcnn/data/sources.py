"""Reading any supported dataset: format detection, splits, and one entry point."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from ..errors import InputError
from .coco import ROBOFLOW_FILE, coco_splits, read_coco
from .csv_format import csv_splits, read_csv
from .records import DetectionDataset
from .voc import read_voc, voc_layout
from .yolo import find_yaml, read_yolo, yolo_splits

FORMATS = ("coco", "yolo", "voc", "csv", "hf")


log = logging.getLogger("frcnn")


def is_hub_source(source: str | Path, format: str | None = None) -> bool:
    """A Hugging Face dataset name (``hf:NAME[:SPLIT]``, or any source with format ``hf``),
    not a path on this machine."""
    return format == "hf" or str(source).startswith("hf:")


def detect_format(source: str | Path) -> str:
    """Guess the format of a file or folder (``hf:`` prefixes a Hugging Face dataset)."""
    if is_hub_source(source):
        return "hf"
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"dataset not found: {path}")
    if path.is_file():
        by_suffix = {".json": "coco", ".csv": "csv", ".yaml": "yolo", ".yml": "yolo"}
        if path.suffix.lower() in by_suffix:
            return by_suffix[path.suffix.lower()]
        raise InputError(f"{path}: cannot tell the format from the suffix; pass --format")
    if (path / ROBOFLOW_FILE).is_file() or any(
        (path / s / ROBOFLOW_FILE).is_file() for s in ("train", "valid", "test")
    ):
        return "coco"
    if find_yaml(path) is not None:
        return "yolo"
    if (path / "Annotations").is_dir():
        return "voc"
    if (path / "labels").is_dir() and (path / "images").is_dir():
        return "yolo"
    if list(path.glob("*.csv")):
        return "csv"
    jsons = list(path.glob("*.json"))
    if len(jsons) == 1:
        return "coco"
    if list(path.glob("*.xml")):
        return "voc"
    raise InputError(
        f"{path}: cannot tell the dataset format (looked for COCO JSON, data.yaml, "
        "Annotations/, images/+labels/, *.csv, *.xml); pass --format"
    )


def _coco_file(path: Path) -> Path:
    if path.is_dir() and not coco_splits(path):
        jsons = sorted(path.glob("*.json"))
        if len(jsons) == 1:
            return jsons[0]
    return path


def list_splits(source: str | Path, format: str | None = None) -> list[str]:
    """The split names a source holds, in a stable order."""
    fmt = format or detect_format(source)
    path = Path(source)
    if fmt == "coco":
        return list(coco_splits(_coco_file(path)))
    if fmt == "yolo":
        return list(yolo_splits(path)[2])
    if fmt == "voc":
        return list(voc_layout(path)[3])
    if fmt == "csv":
        return list(csv_splits(path))
    if fmt == "hf":
        parts = str(source).split(":")
        return [parts[2] if len(parts) > 2 else "train"]
    raise InputError(f"unknown format {fmt!r}; choose one of {FORMATS}")


def read_dataset(
    source: str | Path,
    format: str | None = None,
    split: str | None = None,
    images: str | Path | None = None,
    exif: bool = True,
) -> DetectionDataset:
    """Read one split of a dataset in any supported format.

    Args:
        source: a COCO JSON file or Roboflow export folder, a YOLO folder or data.yaml, a
            VOC folder, a CSV file or folder of split CSVs, or ``hf:NAME[:SPLIT]``.
        format: force ``coco``, ``yolo``, ``voc``, ``csv`` or ``hf`` instead of detecting.
        split: which split (default: ``train`` when present, else the first).
        images: the folder image paths are relative to (COCO and CSV).
        exif: apply EXIF orientation when reading image sizes.
    """
    fmt = format or detect_format(source)
    path = Path(source)
    if fmt == "coco":
        splits = coco_splits(_coco_file(path))
        if not splits:
            raise InputError(f"{path}: no COCO annotation file")
        name = split or ("train" if "train" in splits else next(iter(splits)))
        if name not in splits:
            raise InputError(f"{path}: no split {name!r} (have {sorted(splits)})")
        return read_coco(splits[name], Path(images) if images else None, split=name)
    if fmt == "yolo":
        return read_yolo(path, split, exif)
    if fmt == "voc":
        return read_voc(path, split)
    if fmt == "csv":
        return read_csv(path, split, Path(images) if images else None, exif)
    if fmt == "hf":
        from .hf import read_hf

        return read_hf(str(source), split)
    raise InputError(f"unknown format {fmt!r}; choose one of {FORMATS}")


def read_all_splits(
    source: str | Path, format: str | None = None, **kwargs
) -> dict[str, DetectionDataset]:
    """Every split of a source, by name, each image in one split only: an image file that
    a later split lists again (a YOLO ``val:`` pointing at the training images, say) stays
    in the first split that holds it, with a warning giving the count; a split left with
    no image of its own is dropped."""
    fmt = format or detect_format(source)
    splits = {s: read_dataset(source, fmt, s, **kwargs) for s in list_splits(source, fmt)}
    return distinct_splits(splits, str(source))


def distinct_splits(
    splits: dict[str, DetectionDataset], source: str
) -> dict[str, DetectionDataset]:
    """``splits`` with each image file (by resolved path) in the first split that holds it
    (see :func:`read_all_splits`)."""
    owner: dict[Path, str] = {}
    kept: dict[str, DetectionDataset] = {}
    rank = {"train": 0, "val": 1, "valid": 1, "test": 2}  # who keeps a shared image
    for name in sorted(splits, key=lambda n: rank.get(n, 3)):
        ds = splits[name]
        own, repeated = [], Counter()
        for rec in ds.images:
            key = rec.path.resolve() if rec.path is not None else None
            if key is not None and key in owner:
                repeated[owner[key]] += 1
                continue
            if key is not None:
                owner[key] = name
            own.append(rec)
        for first, n in repeated.items():
            whole = " (all of them: the split is left out)" if not own else ""
            log.warning(
                "warning: %s: %d of the %d images of split %r are also in split %r; kept in "
                "%r only%s",
                source,
                n,
                len(ds.images),
                name,
                first,
                first,
                whole,
            )
        if own:
            ds.images = own
            kept[name] = ds
    return kept
