"""What ``frcnn predict`` writes: predictions as JSON, COCO results or CSV, and drawn images."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..data.images import load_image, to_pil
from ..errors import InputError
from ..evaluation.coco import coco_results
from ..io.atomic import atomic_write, atomic_write_text
from ..words import count
from .predict import Prediction

log = logging.getLogger("frcnn")

# Drawn images keep their input's format where it is one of these; others become JPEG.
DRAWN_SUFFIXES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP"}


def write_predictions(
    predictions: Sequence[Prediction], out: Path, fmt: str, class_names: Sequence[str] | None
) -> Path:
    """``predictions.json`` (one entry per image), ``predictions.coco.json`` (COCO results
    with image ids 1..N in input order, plus the image list) or ``predictions.csv``, each
    written atomically (a full disk leaves no half-written file under the name)."""
    if fmt not in ("json", "coco", "csv"):
        raise InputError(f"unknown output format {fmt!r}; choose json, coco or csv")
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        path = out / "predictions.json"
        text = json.dumps([p.to_json(class_names) for p in predictions], indent=1)
        atomic_write_text(path, text)
    elif fmt == "coco":
        path = out / "predictions.coco.json"
        results = coco_results(
            [
                {"image_id": i, "boxes": p.boxes, "scores": p.scores, "labels": p.labels}
                for i, p in enumerate(predictions, start=1)
            ]
        )
        images = [
            {"id": i, "file_name": str(p.path), "width": p.width, "height": p.height}
            for i, p in enumerate(predictions, start=1)
        ]
        atomic_write_text(path, json.dumps({"images": images, "annotations": results}))
    else:
        path = out / "predictions.csv"
        table = io.StringIO(newline="")
        writer = csv.writer(table)
        writer.writerow(["image_path", "xmin", "ymin", "xmax", "ymax", "label", "score"])
        for p in predictions:
            writer.writerows([str(p.path), *cells] for cells in p.csv_cells(class_names))
        atomic_write(path, lambda tmp: Path(tmp).write_text(table.getvalue(), newline=""))
    return path


def save_drawn(
    predictions: Sequence[Prediction],
    out: Path,
    class_names: Sequence[str] | None,
    exif: bool = True,
    line_width: int | None = None,
    show_labels: bool = True,
    show_scores: bool = True,
    conf: float | None = None,
) -> None:
    """Each image with its boxes, class names and scores (unless hidden), under ``out``,
    in its input's format (JPEG for others and images in memory); ``line_width`` in pixels
    (default: scaled to the image); ``conf``, the threshold the boxes were kept at, is
    said in the log."""
    from ..evaluation.plots import draw_detections

    out.mkdir(parents=True, exist_ok=True)
    stems = Counter(p.path.stem for p in predictions)
    for i, p in enumerate(predictions):
        # Inputs from different folders may share a name: number those so none overwrites.
        name = p.path.stem if stems[p.path.stem] == 1 else f"{i:05d}_{p.path.stem}"
        drawn = draw_detections(
            to_pil(p.array if p.array is not None else load_image(p.path, exif)),
            p.boxes,
            p.labels,
            class_names or [],
            p.scores,
            line_width,
            show_labels,
            show_scores,
        )
        suffix = p.path.suffix.lower() if p.path.suffix.lower() in DRAWN_SUFFIXES else ".jpg"
        target = out / f"{name}{suffix}"
        fmt = DRAWN_SUFFIXES[suffix]
        atomic_write(target, lambda tmp, im=drawn, f=fmt: im.save(tmp, format=f, quality=92))
    at = f" (boxes with score >= {conf:g})" if conf is not None else ""
    log.info("drew %s%s: %s", count(len(predictions), "image"), at, out)
