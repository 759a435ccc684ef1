"""What ``frcnn predict`` writes: predictions as JSON, COCO results or CSV, and drawn images."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..data.images import load_image, to_pil
from ..errors import InputError
from ..evaluation.coco import coco_results
from .predict import Prediction


def write_predictions(
    predictions: Sequence[Prediction], out: Path, fmt: str, class_names: Sequence[str] | None
) -> Path:
    """``predictions.json`` (one entry per image), ``predictions.coco.json`` (COCO results
    with image ids 1..N in input order, plus the image list) or ``predictions.csv``."""
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        path = out / "predictions.json"
        path.write_text(json.dumps([p.to_json(class_names) for p in predictions], indent=1))
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
        path.write_text(json.dumps({"images": images, "annotations": results}))
    elif fmt == "csv":
        path = out / "predictions.csv"
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["image_path", "xmin", "ymin", "xmax", "ymax", "label", "score"])
            for p in predictions:
                writer.writerows([str(p.path), *cells] for cells in p.csv_cells(class_names))
    else:
        raise InputError(f"unknown output format {fmt!r}; choose json, coco or csv")
    return path


def save_drawn(
    predictions: Sequence[Prediction],
    out: Path,
    class_names: Sequence[str] | None,
    exif: bool = True,
    line_width: int | None = None,
    show_labels: bool = True,
    show_scores: bool = True,
) -> None:
    """Each image with its boxes, class names and scores (unless hidden), under ``out``;
    ``line_width`` in pixels (default: scaled to the image)."""
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
        drawn.save(out / f"{name}.jpg", quality=92)
