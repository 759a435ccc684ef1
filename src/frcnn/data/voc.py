"""Pascal VOC XML: ``Annotations/`` + ``JPEGImages/`` (+ ``ImageSets/Main`` splits), or a flat
folder of ``.xml`` files next to their images.

VOC coordinates are 1-based pixel indices: ``xmin = x1 + 1``, ``xmax = x2`` (detectron2's
convention), so a round trip is exact.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

from ..errors import InputError
from .images import IMAGE_SUFFIXES, UnsafePathError, safe_join
from .records import DetectionDataset, ImageRecord, read_names_file

NAME_FILES = ("classes.txt", "labels.txt")


def voc_layout(path: Path) -> tuple[Path, Path, Path, dict[str, list[str]]]:
    """``(root, annotation folder, image folder, split -> xml stems)``."""
    root = path.resolve()
    if (root / "Annotations").is_dir():
        ann_dir, img_dir = root / "Annotations", root / "JPEGImages"
        sets = root / "ImageSets" / "Main"
        splits = {}
        if sets.is_dir():
            for f in sorted(sets.glob("*.txt")):
                if "_" not in f.stem:  # class-specific files are named <class>_<split>.txt
                    splits[f.stem] = [
                        ln.split()[0] for ln in f.read_text().splitlines() if ln.strip()
                    ]
        if "trainval" in splits and ("train" in splits or "val" in splits):
            del splits["trainval"]  # VOC's trainval is train + val: not a split of its own
        if not splits:
            splits = {"train": sorted(p.stem for p in ann_dir.glob("*.xml"))}
        return root, ann_dir, img_dir, splits
    return root, root, root, {"train": sorted(p.stem for p in root.glob("*.xml"))}


def _text(node: Element | None, tag: str, default: str = "") -> str:
    child = node.find(tag) if node is not None else None
    return child.text.strip() if child is not None and child.text else default


def _parse(xml_file: Path) -> tuple[str, int | None, int | None, list[tuple]]:
    tree = ElementTree.parse(xml_file)  # defusedxml: no entity expansion, no external entities
    top = tree.getroot()
    size = top.find("size")
    width = _text(size, "width")
    height = _text(size, "height")
    objects = []
    for idx, obj in enumerate(top.findall("object")):
        box = obj.find("bndbox")
        coords = tuple(_text(box, k, "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
        objects.append((idx, _text(obj, "name"), _text(obj, "difficult", "0"), coords))
    return (
        _text(top, "filename"),
        int(float(width)) if width else None,
        int(float(height)) if height else None,
        objects,
    )


def _class_names(root: Path, ann_dir: Path) -> list[str]:
    names = read_names_file(root, NAME_FILES)
    if names is not None:
        return names
    found = set()
    for xml_file in ann_dir.glob("*.xml"):
        try:
            found.update(name for _, name, _, _ in _parse(xml_file)[3])
        except (OSError, ElementTree.ParseError, ValueError):
            continue  # read_voc reports the file as unreadable; the other files still count
    return sorted(found)


def read_voc(path: Path, split: str | None = None) -> DetectionDataset:
    root, ann_dir, img_dir, splits = voc_layout(Path(path))
    split = split or ("train" if "train" in splits else next(iter(splits)))
    if split not in splits:
        raise InputError(f"{path}: no split {split!r} (have {sorted(splits)})")
    names = _class_names(root, ann_dir)
    label_of = {n: i + 1 for i, n in enumerate(names)}
    ds = DetectionDataset(root, names, [], source=str(path), format="voc", split=split)
    for image_id, stem in enumerate(splits[split], start=1):
        xml_file = ann_dir / f"{stem}.xml"
        rel_xml = xml_file.relative_to(root).as_posix()
        try:
            file_name, width, height, objects = _parse(xml_file)
        except (OSError, ElementTree.ParseError, ValueError) as err:
            ds.problems.add("bad_row", f"cannot read annotation file: {err}", file=rel_xml)
            rec = ImageRecord(stem, None, None, None, image_id=image_id, skip="bad_row")
            ds.images.append(rec)
            continue
        name, fixed = _image_name(img_dir, root, stem, file_name)
        if fixed:
            ds.problems.add("image_name_fixed", fixed, file=rel_xml, image=name)
        rec = ImageRecord(name, None, width, height, image_id=image_id, ann_file=rel_xml)
        ds.images.append(rec)
        try:
            rec.path = safe_join(root, name)
        except UnsafePathError as err:
            ds.problems.add("unsafe_path", str(err), file=rel_xml, image=name)
            rec.skip = "unsafe_path"
            continue
        boxes, labels, ignore, idxs = [], [], [], []
        for idx, cls, difficult, coords in objects:
            if cls not in label_of:
                ds.drop(
                    "unknown_category",
                    f"class {cls!r} is not in the class list",
                    file=rel_xml,
                    image=name,
                    annotation=idx,
                )
                continue
            try:
                xmin, ymin, xmax, ymax = (float(v) for v in coords)
            except ValueError:
                ds.drop(
                    "bad_row",
                    f"bndbox {coords} is not numeric",
                    file=rel_xml,
                    image=name,
                    annotation=idx,
                )
                continue
            boxes.append((xmin - 1, ymin - 1, xmax, ymax))
            labels.append(label_of[cls])
            ignore.append(difficult not in ("0", "", "false"))
            idxs.append(idx)
        rec.set_annotations(boxes, labels, idxs, ignore=ignore)
    return ds


def _image_name(img_dir: Path, root: Path, stem: str, file_name: str) -> tuple[str, str]:
    """The image of an annotation file, relative to ``root``, and a note when it is not the
    file ``<filename>`` names: when that file is missing (``x.tif`` where the export wrote
    ``x.png``), the image with its stem (or the XML's stem) and another extension."""
    prefix = img_dir.relative_to(root).as_posix()
    prefix = "" if prefix == "." else prefix + "/"

    def exists(name: str) -> bool:  # only inside the dataset root
        try:
            return safe_join(root, name).is_file()
        except UnsafePathError:
            return False

    if file_name and exists(prefix + file_name):
        return prefix + file_name, ""
    stems = [Path(file_name).with_suffix("").as_posix()] if file_name else []
    for candidate in [*stems, stem]:
        for suffix in IMAGE_SUFFIXES:
            if exists(f"{prefix}{candidate}{suffix}"):
                note = f"<filename> {file_name} not found; using {candidate}{suffix}"
                return f"{prefix}{candidate}{suffix}", note if file_name else ""
    return prefix + (file_name or f"{stem}.jpg"), ""


def _fmt(v: float) -> str:
    return f"{round(v, 2):g}"


def write_voc(
    splits: dict[str, DetectionDataset], out: Path, image_names: dict[str, dict[int, str]]
) -> None:
    """Write ``Annotations/<stem>.xml`` per image (placed by the caller at
    ``JPEGImages/<name>``), ``ImageSets/Main/<split>.txt`` and ``classes.txt``."""
    from xml.sax.saxutils import escape

    (out / "Annotations").mkdir(parents=True, exist_ok=True)
    (out / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    names = next(iter(splits.values())).class_names
    (out / "classes.txt").write_text("\n".join(names) + "\n")
    for split, ds in splits.items():
        stems = []
        for i, rec in enumerate(ds.images):
            file_name = image_names[split][i].removeprefix("JPEGImages/")
            stem = file_name.rsplit(".", 1)[0].replace("/", "__")
            stems.append(stem)
            objects = "".join(
                f"  <object><name>{escape(names[int(c) - 1])}</name><difficult>{int(d)}</difficult>"
                f"<bndbox><xmin>{_fmt(b[0] + 1)}</xmin><ymin>{_fmt(b[1] + 1)}</ymin>"
                f"<xmax>{_fmt(b[2])}</xmax><ymax>{_fmt(b[3])}</ymax></bndbox></object>\n"
                for b, c, d in zip(
                    rec.boxes.tolist(), rec.labels, rec.ignore | rec.iscrowd, strict=True
                )
            )
            (out / "Annotations" / f"{stem}.xml").write_text(
                f"<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{escape(file_name)}</filename>\n"
                f"  <size><width>{rec.width}</width><height>{rec.height}</height><depth>3</depth></size>\n"
                f"{objects}</annotation>\n"
            )
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(stems) + "\n")
