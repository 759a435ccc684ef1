"""The validation images of a run, recorded in ``val_split.json`` so that ``frcnn eval --run``
scores exactly them (and not the training images) with the run's best weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TrainConfig, load_config
from ..data.check import check_dataset
from ..data.hf import read_hf
from ..data.records import DetectionDataset
from ..data.sources import read_dataset
from ..data.tiles import crop_record
from ..errors import InputError
from ..io.atomic import atomic_write_text
from .data import val_read_split

VAL_SPLIT_FILE = "val_split.json"


def write_val_split(
    out: Path, cfg: TrainConfig, val: DetectionDataset, limit: int | None = None
) -> Path:
    """``out/val_split.json``: where the validation images come from (``limit``: they are
    among the first rows of a streamed source) and, per image, its file, id and (for a
    held-out block) window."""
    d = cfg.data
    record = {
        "source": str(d.val or d.train),
        "split": val_read_split(cfg) if d.val else None,
        "held_out": not d.val,
        "limit": limit,
        "images": [
            {
                "file_name": r.file_name.rsplit("@", 1)[0] if r.window else r.file_name,
                "image_id": int(r.image_id),
                "window": list(r.window) if r.window else None,
            }
            for r in val.images
        ],
    }
    return atomic_write_text(out / VAL_SPLIT_FILE, json.dumps(record, indent=1))


@dataclasses.dataclass
class RunValidation:
    """What ``frcnn eval --run`` needs: the validation images, the weights and how the run
    predicted (tiles, detections per image)."""

    dataset: DetectionDataset
    weights: Path
    config: TrainConfig


def read_run_validation(run: str | Path) -> RunValidation:
    """The recorded validation images of ``run`` (read again from their source and checked
    as in training) with its best weights (last when none was chosen).

    Raises:
        FileNotFoundError: ``run`` is not a run folder, or it has no recorded split (runs
            of frcnn 0.1) or no weights.
        ValueError: a recorded image is no longer in the source.
    """
    run = Path(run)
    split_file, config_file = run / VAL_SPLIT_FILE, run / "config.yaml"
    for needed in (config_file, split_file):
        if not needed.is_file():
            raise FileNotFoundError(
                f"--run {run}: {needed.name} is missing (not a run folder, or one from before "
                "runs recorded their validation split); evaluate with --weights and --data"
            )
    cfg = load_config(config_file)
    record = json.loads(split_file.read_text())
    found = [run / "weights" / n for n in ("best.safetensors", "last.safetensors")]
    weights = next((w for w in found if w.is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"--run {run}: no weights/best.safetensors or last.safetensors")
    return RunValidation(_recorded_images(record, cfg), weights, cfg)


def _recorded_images(record: dict[str, Any], cfg: TrainConfig) -> DetectionDataset:
    d = cfg.data
    if record.get("limit"):  # the first rows of a stream, not all of it
        read = read_hf(record["source"], record["split"], limit=record["limit"])
    else:
        read = read_dataset(record["source"], d.format, record["split"], d.images, d.exif)
    source, _ = check_dataset(read, "header", d.exif)
    by_name = {r.file_name: r for r in source.images}
    images = []
    for entry in record["images"]:
        rec = by_name.get(entry["file_name"])
        if rec is None:
            raise InputError(
                f"validation image {entry['file_name']} of the run is no longer in "
                f"{record['source']}"
            )
        if entry["window"] is not None:
            window = np.asarray(entry["window"], np.float32)
            rec, _ = crop_record(rec, window, d.tile_min_visibility, entry["image_id"])
        else:
            rec = dataclasses.replace(rec, image_id=entry["image_id"])
        images.append(rec)
    return DetectionDataset(
        source.root,
        source.class_names,
        images,
        source=source.source,
        format=source.format,
        split="val",
    )
