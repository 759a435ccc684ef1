"""YOLO (Ultralytics) labels: ``class cx cy w h`` rows normalised to 0..1, one file per image."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import yaml

from ..errors import InputError
from ..io.yaml_file import read_yaml
from .images import IMAGE_SUFFIXES, UnsafePathError, image_size, safe_join
from .records import DetectionDataset, ImageRecord, read_names_file

log = logging.getLogger("frcnn")

YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml")
NAME_FILES = ("classes.txt", "names.txt", "obj.names", "labels.txt")


def _read_names(names: object, where: Path) -> list[str]:
    if isinstance(names, dict):
        keys = sorted(int(k) for k in names)
        if keys != list(range(len(keys))):
            raise InputError(f"{where}: names must be numbered 0..{len(keys) - 1}, got {keys}")
        return [str(names[k] if k in names else names[str(k)]) for k in keys]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise InputError(f"{where}: 'names' must be a list or a mapping, got {type(names).__name__}")


def find_yaml(path: Path) -> Path | None:
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return path
    for name in YAML_NAMES:
        if (path / name).is_file():
            return path / name
    return None


def yolo_splits(path: Path) -> tuple[Path, list[str], dict[str, list[str]]]:
    """``(root, class names, split -> image sources)``; a source is a folder or a list file,
    relative to root."""
    cfg_file = find_yaml(path)
    if cfg_file is not None:
        cfg = read_yaml(cfg_file) or {}
        if not isinstance(cfg, dict):
            raise InputError(
                f"{cfg_file}: a YOLO data.yaml holds a mapping (path, train, val, names)"
            )
        if "names" not in cfg:
            raise InputError(f"{cfg_file}: no 'names' list")
        root = cfg_file.parent / str(cfg.get("path") or ".")
        if not root.is_dir():  # the path written by another machine: fall back to the yaml's folder
            root = cfg_file.parent
        names = _read_names(cfg["names"], cfg_file)
        splits = {}
        for key in ("train", "val", "test"):
            value = cfg.get(key)
            if value:
                splits[key] = [str(v) for v in (value if isinstance(value, list) else [value])]
        return root.resolve(), names, splits
    root = path.resolve()
    names = read_names_file(root, NAME_FILES)
    if names is None:
        raise InputError(
            f"{root}: YOLO dataset needs data.yaml or a names file ({', '.join(NAME_FILES)})"
        )
    images = root / "images"
    subdirs = sorted(d.name for d in images.iterdir() if d.is_dir()) if images.is_dir() else []
    if subdirs:
        return root, names, {d: [f"images/{d}"] for d in subdirs}
    return root, names, {"train": ["images"]}


def label_path_for(image_rel: str) -> str:
    """Ultralytics' rule: the last ``/images/`` of the path becomes ``/labels/``, suffix .txt."""
    posix = "/" + image_rel.replace("\\", "/")
    if "/images/" in posix:
        head, tail = posix.rsplit("/images/", 1)
        posix = f"{head}/labels/{tail}"
    return posix[1:].rsplit(".", 1)[0] + ".txt"


def _image_list(root: Path, sources: list[str], ds: DetectionDataset) -> list[str]:
    names: list[str] = []
    for source in sources:
        try:
            where = safe_join(root, source)
        except UnsafePathError as err:
            ds.problems.add("unsafe_path", str(err), file=source)
            continue
        if where.is_dir():
            names += sorted(
                p.relative_to(root).as_posix()
                for p in where.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif where.is_file():
            # A list file: one image per line, "./x" relative to the list, else to the root.
            for line in where.read_text().splitlines():
                entry = line.strip()
                if entry.startswith("./"):
                    entry = Path(os.path.relpath(where.parent / entry, root)).as_posix()
                if entry:
                    names.append(entry)
        else:
            raise FileNotFoundError(f"YOLO split source {source} not found under {root}")
    return names


def read_yolo(path: Path, split: str | None = None, exif: bool = True) -> DetectionDataset:
    root, names, splits = yolo_splits(Path(path))
    if not splits:
        raise InputError(f"{path}: no train/val/test image sources")
    split = split or ("train" if "train" in splits else next(iter(splits)))
    if split not in splits:
        raise InputError(f"{path}: no split {split!r} (have {sorted(splits)})")
    ds = DetectionDataset(root, names, [], source=str(path), format="yolo", split=split)
    for image_id, name in enumerate(_image_list(root, splits[split], ds), start=1):
        rec = ImageRecord(name, None, None, None, image_id=image_id)
        ds.images.append(rec)
        try:
            rec.path = safe_join(root, name)
            label_file = safe_join(root, label_path_for(name))
        except UnsafePathError as err:
            ds.problems.add("unsafe_path", str(err), image=name)
            rec.skip = "unsafe_path"
            continue
        if rec.path.is_file():
            try:
                rec.width, rec.height = image_size(rec.path, exif)
            except OSError:
                pass  # reported as image_corrupt by the checks
        if label_file.is_file():
            _parse_label_file(ds, rec, label_file, len(names))
    return ds


def _parse_label_file(
    ds: DetectionDataset, rec: ImageRecord, label_file: Path, num_names: int
) -> None:
    boxes, labels, rows = [], [], []
    rel = (
        label_file.relative_to(ds.root).as_posix()
        if label_file.is_relative_to(ds.root)
        else str(label_file)
    )
    for row, line in enumerate(label_file.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        where = dict(file=rel, image=rec.file_name, annotation=f"row {row}")
        if len(parts) != 5:
            ds.drop(
                "bad_row",
                f"{len(parts)} columns, expected 5 (class cx cy w h): {line.strip()!r}",
                **where,
            )
            continue
        try:
            cls = float(parts[0])
            cx, cy, w, h = (float(v) for v in parts[1:])
        except ValueError:
            ds.drop("bad_row", f"not numbers: {line.strip()!r}", **where)
            continue
        if cls != int(cls) or not 0 <= cls < num_names:
            ds.drop(
                "yolo_bad_class",
                f"class id {parts[0]} but {num_names} names (0..{num_names - 1})",
                **where,
            )
            continue
        width = rec.width if rec.width is not None else float("nan")
        height = rec.height if rec.height is not None else float("nan")
        boxes.append(
            (
                (cx - w / 2) * width,
                (cy - h / 2) * height,
                (cx + w / 2) * width,
                (cy + h / 2) * height,
            )
        )
        labels.append(int(cls) + 1)
        rows.append(row)
    rec.ann_file = rel
    rec.set_annotations(boxes, labels, rows)


def write_yolo(
    splits: dict[str, DetectionDataset], out: Path, image_names: dict[str, dict[int, str]]
) -> None:
    """Write ``out/data.yaml``, and per split ``labels/<split>/<name>.txt`` for the images that
    the caller placed at ``images/<split>/<name>`` (``image_names[split][i]`` is that path)."""
    names = next(iter(splits.values())).class_names
    cfg: dict[str, object] = {"path": "."}
    for split, ds in splits.items():
        cfg["val" if split in ("val", "valid") else split] = f"images/{split}"
        for i, rec in enumerate(ds.images):
            label_file = out / label_path_for(image_names[split][i])
            label_file.parent.mkdir(parents=True, exist_ok=True)
            w, h = float(rec.width), float(rec.height)
            b = rec.boxes
            cx, cy = (b[:, 0] + b[:, 2]) / 2 / w, (b[:, 1] + b[:, 3]) / 2 / h
            bw, bh = (b[:, 2] - b[:, 0]) / w, (b[:, 3] - b[:, 1]) / h
            rows = [
                f"{int(c) - 1} {x:.6f} {y:.6f} {ww:.6f} {hh:.6f}"
                for c, x, y, ww, hh in zip(rec.labels, cx, cy, bw, bh, strict=True)
            ]
            label_file.write_text("\n".join(rows) + ("\n" if rows else ""))
    if "val" not in cfg:  # a writer never invents a split (val: = train would leak it)
        log.warning(
            "warning: data.yaml: the data has no validation split, so data.yaml has no val: "
            "(Ultralytics asks for one: hold images out and add val: with their folder)"
        )
    cfg["names"] = list(names)
    (out / "data.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
