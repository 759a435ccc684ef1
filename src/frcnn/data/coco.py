"""COCO JSON: a file, or a Roboflow-style export folder of ``train/ valid/ test/`` splits."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from .images import UnsafePathError, safe_join
from .records import DetectionDataset, ImageRecord

ROBOFLOW_FILE = "_annotations.coco.json"
ROBOFLOW_SPLITS = ("train", "valid", "test")


def coco_splits(path: Path) -> dict[str, Path]:
    """Split name -> annotation file, for a JSON file (one split, named by its stem) or a
    folder of ``<split>/_annotations.coco.json``."""
    if path.is_file():
        stem = path.stem.lower()
        name = "val" if "val" in stem else "test" if "test" in stem else "train"
        return {name: path}
    found = {
        s: path / s / ROBOFLOW_FILE for s in ROBOFLOW_SPLITS if (path / s / ROBOFLOW_FILE).is_file()
    }
    if not found and (path / ROBOFLOW_FILE).is_file():
        found = {"train": path / ROBOFLOW_FILE}
    return found


def _category_names(categories: list[dict], used: set[int]) -> tuple[dict[int, int], list[str]]:
    """COCO category id -> contiguous label 1..K, and the names in label order.

    Roboflow exports add a parent category (id 0, supercategory "none") that the real
    classes name as their supercategory and no annotation uses; it is not a class.
    """
    for c in categories:
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or "name" not in c:
            raise InputError(f"category {c!r} needs an integer id and a name")
    ids = [c.get("id") for c in categories]
    duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if duplicates:
        names = {i: [c.get("name") for c in categories if c.get("id") == i] for i in duplicates}
        raise InputError(
            f"category ids used more than once: {names}; give each category its own id"
        )
    cats = sorted(categories, key=lambda c: c["id"])
    parents = {c["supercategory"] for c in cats if c.get("supercategory") not in (None, "none")}
    cats = [
        c
        for c in cats
        if not (c.get("supercategory") == "none" and c["name"] in parents and c["id"] not in used)
    ]
    return {c["id"]: i + 1 for i, c in enumerate(cats)}, [str(c["name"]) for c in cats]


def read_coco(
    ann_file: Path, images_dir: Path | None = None, split: str | None = None
) -> DetectionDataset:
    """Read one COCO annotation file; image file names are relative to ``images_dir``
    (default: the JSON's folder, or its ``images/`` subfolder when the names are found
    there)."""
    ann_file = Path(ann_file)
    try:
        data = json.loads(ann_file.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{ann_file}: not valid JSON ({err})") from None
    except RecursionError:
        raise InputError(f"{ann_file}: not a COCO detection file (nested too deep)") from None
    if not isinstance(data, dict):
        raise InputError(f"{ann_file}: not a COCO detection file (not a mapping)")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise InputError(f"{ann_file}: not a COCO detection file (no {key!r} list)")
        if not isinstance(data[key], list):
            raise InputError(
                f"{ann_file}: not a COCO detection file ({key!r} is a "
                f"{type(data[key]).__name__}, not a list)"
            )
    root = (
        Path(images_dir) if images_dir is not None else _guess_image_root(ann_file, data["images"])
    )
    used = {a.get("category_id") for a in data["annotations"] if isinstance(a, dict)}
    try:
        cat_to_label, names = _category_names(data["categories"], used)
    except ValueError as err:  # InputError too
        raise InputError(f"{ann_file}: {err}") from None
    ds = DetectionDataset(root, names, [], source=str(ann_file), format="coco", split=split)

    records = _read_images(data["images"], root, ann_file, ds)
    per_image = _read_annotations(data["annotations"], records, cat_to_label, ann_file, ds)
    for image_id, anns in per_image.items():
        if anns:
            boxes, labels, crowd, ignore, ids = zip(*anns, strict=True)
            records[image_id].set_annotations(boxes, labels, ids, crowd, ignore)
    return ds


def _image_entry_problem(im: object) -> str | None:
    """What makes a COCO image entry unusable, or None."""
    if not isinstance(im, dict):
        return f"not a mapping: {im!r}"
    if not isinstance(im.get("id"), int) or isinstance(im.get("id"), bool):
        return f"id {im.get('id')!r} is not an integer"
    if not isinstance(im.get("file_name"), str) or not im["file_name"]:
        return f"file_name {im.get('file_name')!r} is not a file name"
    for key in ("width", "height"):
        value = im.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            return f"{key} {value!r} is not a positive integer"
    return None


def _read_images(
    images: list[dict], root: Path, ann_file: Path, ds: DetectionDataset
) -> dict[int, ImageRecord]:
    """A record per image entry (added to ``ds.images``); duplicates and unsafe paths are
    kept as skipped records with their problem."""
    records: dict[int, ImageRecord] = {}
    for index, im in enumerate(images):
        name = str(im.get("file_name", f"#{index}")) if isinstance(im, dict) else f"#{index}"
        problem = _image_entry_problem(im)
        if problem:
            ds.problems.add(
                "bad_row", f"image entry {index}: {problem}", file=ann_file.name, image=name
            )
            ds.images.append(
                ImageRecord(name, None, None, None, image_id=-1 - index, skip="bad_row")
            )
            continue
        if im["id"] in records:
            ds.problems.add(
                "duplicate_image",
                f"image id {im['id']} listed twice",
                file=ann_file.name,
                image=name,
            )
            dup = ImageRecord(name, None, im.get("width"), im.get("height"), image_id=int(im["id"]))
            dup.skip = "duplicate_image"
            ds.images.append(dup)
            continue
        rec = ImageRecord(name, None, im.get("width"), im.get("height"), image_id=int(im["id"]))
        rec.ann_file = ann_file.name
        try:
            rec.path = safe_join(root, name)
        except UnsafePathError as err:
            ds.problems.add("unsafe_path", str(err), file=ann_file.name, image=name)
            rec.skip = "unsafe_path"
        records[im["id"]] = rec
        ds.images.append(rec)

    return records


def _numbers(bbox: object) -> tuple[float, ...] | None:
    """A COCO bbox as four floats (None values become NaN, which the checks report), or None
    when it is not a list of four numbers."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return None
    if not all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in bbox
    ):
        return None
    return tuple(float("nan") if v is None else float(v) for v in bbox)


def _read_annotations(
    annotations: list[dict],
    records: dict[int, ImageRecord],
    cat_to_label: dict,
    ann_file: Path,
    ds: DetectionDataset,
) -> dict[int, list[tuple]]:
    """Per image id, ``(box, label, crowd, ignore, id)`` of each usable annotation; the
    others are dropped with their problem."""
    per_image: dict[int, list[tuple]] = {i: [] for i in records}
    seen_ids: set[int] = set()
    for idx, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            ds.drop("bad_row", f"annotation {idx} is not a mapping: {ann!r}", file=ann_file.name)
            continue
        ann_id = ann.get("id", idx)
        duplicate_id = "id" in ann and ann_id in seen_ids
        seen_ids.add(ann_id)
        where = dict(file=ann_file.name, annotation=ann_id)
        image = records.get(ann.get("image_id"))
        if image is None:
            unknown = f"annotation refers to unknown image_id {ann.get('image_id')}"
            ds.drop("bad_row", unknown, **where)
            continue
        where["image"] = image.file_name
        if ann.get("category_id") not in cat_to_label:
            unknown = f"category_id {ann.get('category_id')} is not in categories"
            ds.drop("unknown_category", unknown, **where)
            continue
        bbox = ann.get("bbox")
        numbers = _numbers(bbox)
        if numbers is None or not isinstance(ann_id, int) or isinstance(ann_id, bool):
            bad = (
                f"bbox {bbox!r} is not [x, y, width, height]"
                if numbers is None
                else f"annotation id {ann_id!r} is not an integer"
            )
            ds.drop("bad_row", bad, **where)
            continue
        if duplicate_id:
            used = f"annotation id {ann_id} was already used"
            ds.problems.add("duplicate_annotation_id", used, **where)
        x, y, w, h = numbers
        label = cat_to_label[ann["category_id"]]
        crowd, ignore = bool(ann.get("iscrowd", 0)), bool(ann.get("ignore", 0))
        per_image[ann["image_id"]].append(((x, y, x + w, y + h), label, crowd, ignore, int(ann_id)))
    return per_image


# How many image names are probed to find the image folder (spread over the whole list).
ROOT_PROBES = 200


def _guess_image_root(ann_file: Path, images: list[dict]) -> Path:
    """The folder where most image names exist: the JSON's folder, its ``images/``, or a
    sibling ``images/``. Names are probed across the whole list, so a few missing images do
    not move the root (the checks then report exactly those as missing)."""
    folder = ann_file.parent
    names = [str(im.get("file_name", "")) for im in images]
    names = [n for n in names if n and not Path(n).is_absolute()]
    step = max(1, len(names) // ROOT_PROBES)
    probe = names[::step][:ROOT_PROBES]
    candidates = (folder, folder / "images", folder.parent / "images")
    found = [sum((c / n).exists() for n in probe) for c in candidates]
    return candidates[found.index(max(found))] if max(found, default=0) > 0 else folder


def write_coco(ds: DetectionDataset, ann_file: Path, image_names: dict[int, str]) -> None:
    """Write ``ds`` as COCO JSON. ``image_names`` maps record index -> file name to store."""
    images, annotations = [], []
    ann_id = 1
    for i, rec in enumerate(ds.images):
        images.append(
            {"id": i + 1, "file_name": image_names[i], "width": rec.width, "height": rec.height}
        )
        rows = zip(
            rec.boxes.tolist(),
            rec.labels.tolist(),
            rec.iscrowd.tolist(),
            rec.ignore.tolist(),
            strict=True,
        )
        for box, label, crowd, ignore in rows:
            x1, y1, x2, y2 = box
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": i + 1,
                    "category_id": int(label),
                    "bbox": [round(x1, 3), round(y1, 3), round(w, 3), round(h, 3)],
                    "area": round(w * h, 3),
                    "iscrowd": int(crowd),
                    **({"ignore": 1} if ignore else {}),
                }
            )
            ann_id += 1
    categories = [
        {"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(ds.class_names)
    ]
    ann_file.parent.mkdir(parents=True, exist_ok=True)
    ann_file.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
