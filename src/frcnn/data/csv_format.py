"""CSV of boxes: ``image_path,xmin,ymin,xmax,ymax,label``, one row per box.

A row with empty coordinates is an image with no boxes. Column names are matched
case-insensitively, so the TensorFlow-style ``filename,width,height,class,xmin,...`` also
reads. A folder of ``train.csv``/``val.csv``/``test.csv`` holds splits.

Files read as spreadsheet programs save them: UTF-8 with or without a byte-order mark,
UTF-16 (Excel's "Unicode text"), or Windows-1252 when the bytes are not UTF-8 (said in the
log); any line endings; comma, semicolon or tab separated (Excel's ``sep=;`` first line
honoured, else told apart by the header); decimal commas in semicolon or tab separated
files. A row whose numbers do not read is reported with its file and line and costs only
that row.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from ..errors import InputError
from .images import UnsafePathError, image_size, safe_join
from .records import DetectionDataset, ImageRecord, read_names_file

COLUMNS = ("image_path", "xmin", "ymin", "xmax", "ymax", "label")
_ALIASES = {
    "image_path": ("image_path", "filename", "file_name", "image", "path"),
    "label": ("label", "class", "class_name", "category"),
}
NAME_FILES = ("classes.txt", "labels.txt")
DELIMITERS = (",", ";", "\t")

log = logging.getLogger("frcnn")


def decode_table(path: Path) -> str:
    """The text of a CSV file in whichever encoding a spreadsheet program saved it."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning(
            "warning: %s is not UTF-8; read as Windows-1252 (save it as CSV UTF-8 to be sure)",
            path,
        )
        return data.decode("cp1252")


def read_table(path: Path) -> tuple[list[list[str]], str]:
    """The rows of a CSV file (see the module doc) and its delimiter."""
    text = decode_table(path)
    first, _, rest = text.partition("\n")
    if first.strip().lower().startswith("sep=") and len(first.strip()) == 5:
        delimiter, text = first.strip()[4], rest  # Excel's separator line
    else:
        header = first.lower()
        delimiter = max(DELIMITERS, key=lambda d: (header.count(d), d == ","))
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)), delimiter


def number(text: str, delimiter: str) -> float:
    """A number as the file writes it (a decimal comma where commas do not separate).

    Raises:
        ValueError: not a number."""
    text = text.strip()
    if delimiter != "," and "," in text and "." not in text:
        text = text.replace(",", ".")
    return float(text)


def csv_splits(path: Path) -> dict[str, Path]:
    if path.is_file():
        return {path.stem: path}
    files = sorted(path.glob("*.csv"))
    return {f.stem: f for f in files}


def _columns(header: list[str], where: Path) -> dict[str, int]:
    lower = [h.strip().lower() for h in header]
    found = {}
    for col in COLUMNS:
        for alias in _ALIASES.get(col, (col,)):
            if alias in lower:
                found[col] = lower.index(alias)
                break
        else:
            raise InputError(
                f"{where}: no {col!r} column in header {header} (need {', '.join(COLUMNS)})"
            )
    for opt in ("width", "height"):
        if opt in lower:
            found[opt] = lower.index(opt)
    return found


def read_csv(
    path: Path, split: str | None = None, images_dir: Path | None = None, exif: bool = True
) -> DetectionDataset:
    csv_file, split = _split_file(Path(path), split)
    root = Path(images_dir).resolve() if images_dir else csv_file.parent.resolve()
    rows, delimiter = read_table(csv_file)
    if not rows:
        raise InputError(f"{csv_file}: empty file")
    cols = _columns(rows[0], csv_file)
    names = read_names_file(csv_file.parent, NAME_FILES)
    if names is None:
        li = cols["label"]
        names = sorted({r[li].strip() for r in rows[1:] if len(r) > li and r[li].strip()})
    label_of = {n: i + 1 for i, n in enumerate(names)}
    ds = DetectionDataset(root, names, [], source=str(csv_file), format="csv", split=split)
    records: dict[str, ImageRecord] = {}
    per_image: dict[str, list[tuple]] = {}
    width_needed = len(COLUMNS)
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = dict(file=csv_file.name, annotation=f"line {line_no}")
        if len(row) < max(cols.values()) + 1 or len(row) < width_needed:
            ds.drop("bad_row", f"{len(row)} columns, expected {len(rows[0])}: {row}", **where)
            continue
        name = row[cols["image_path"]].strip()
        rec = records.get(name)
        if rec is None:
            try:
                rec = _new_record(
                    name, row, cols, (csv_file, delimiter), root, len(records) + 1, exif, ds
                )
            except ValueError:
                size = [row[cols[k]] for k in ("width", "height")]
                ds.drop("bad_row", f"width, height {size} are not numbers", **where, image=name)
                continue
            records[name] = rec
            per_image[name] = []
            ds.images.append(rec)
        coords = [row[cols[k]].strip() for k in ("xmin", "ymin", "xmax", "ymax")]
        label = row[cols["label"]].strip()
        if not any(coords) and not label:
            continue  # an image with no boxes
        where["image"] = name
        try:
            box = tuple(number(v, delimiter) for v in coords)
        except ValueError:
            ds.drop("bad_row", f"coordinates {coords} are not numbers", **where)
            continue
        if label not in label_of:
            ds.drop("unknown_category", f"label {label!r} is not in the class list", **where)
            continue
        per_image[name].append((box, label_of[label], line_no))
    for name, anns in per_image.items():
        if anns:
            records[name].set_annotations(*zip(*anns, strict=True))
    return ds


def _split_file(path: Path, split: str | None) -> tuple[Path, str]:
    """The CSV file of ``split`` (default: ``train``, else the first) and the split."""
    splits = csv_splits(path)
    if not splits:
        raise InputError(f"{path}: no .csv files")
    split = split or ("train" if "train" in splits else next(iter(splits)))
    return splits[split], split


def _new_record(
    name: str,
    row: list[str],
    cols: dict[str, int],
    table: tuple[Path, str],
    root: Path,
    image_id: int,
    exif: bool,
    ds: DetectionDataset,
) -> ImageRecord:
    """The record of an image first named on ``row`` of ``table`` (file, delimiter): its
    safe path and its size (from the width/height columns, else the image header).

    Raises:
        ValueError: width or height given but not numbers."""
    csv_file, delimiter = table
    rec = ImageRecord(name, None, None, None, image_id=image_id, ann_file=csv_file.name)
    try:
        rec.path = safe_join(root, name)
    except UnsafePathError as err:
        ds.problems.add("unsafe_path", str(err), file=csv_file.name, image=name)
        rec.skip = "unsafe_path"
    if "width" in cols and "height" in cols and row[cols["width"]].strip():
        rec.width = int(number(row[cols["width"]], delimiter))
        rec.height = int(number(row[cols["height"]], delimiter))
    elif rec.path is not None and rec.path.is_file():
        try:
            rec.width, rec.height = image_size(rec.path, exif)
        except OSError:
            pass  # reported as image_corrupt by the checks
    return rec


def write_csv(
    splits: dict[str, DetectionDataset], out: Path, image_names: dict[str, dict[int, str]]
) -> None:
    """One ``<split>.csv`` per split (paths relative to ``out``) and ``classes.txt``."""
    out.mkdir(parents=True, exist_ok=True)
    names = next(iter(splits.values())).class_names
    (out / "classes.txt").write_text("\n".join(names) + "\n")
    for split, ds in splits.items():
        with (out / f"{split}.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for i, rec in enumerate(ds.images):
                name = image_names[split][i]
                if rec.num_boxes == 0:
                    writer.writerow([name, "", "", "", "", ""])
                for box, label in zip(rec.boxes.tolist(), rec.labels.tolist(), strict=True):
                    writer.writerow([name, *(f"{round(v, 3):g}" for v in box), names[label - 1]])
