"""Small datasets written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def save_image(
    path: Path, width: int = 64, height: int = 48, mode: str = "RGB", seed: int = 0
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


def write_coco(
    root: Path,
    images: list[dict],
    annotations: list[dict],
    categories: list[dict],
    name: str = "ann.json",
) -> Path:
    for im in images:
        if not im.get("_no_file"):
            save_image(root / im["file_name"], im.get("width", 64), im.get("height", 48))
    clean = [{k: v for k, v in im.items() if not k.startswith("_")} for im in images]
    path = root / name
    path.write_text(
        json.dumps({"images": clean, "annotations": annotations, "categories": categories})
    )
    return path
