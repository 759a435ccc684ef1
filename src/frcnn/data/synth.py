"""The built-in synthetic dataset: shapes of several classes on textured backgrounds, in COCO
format. Quick to generate, learnable, and honest about difficulty: objects from small to
large, random colours, partial overlaps, and some images with no objects at all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..boxes.overlap import box_iou

SHAPES = ("rectangle", "ellipse", "triangle", "cross", "ring")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A colour gradient with low-frequency blotches and pixel noise, HxWx3 float 0..255."""
    c0, c1 = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size
    t = np.cos(angle) * xx + np.sin(angle) * yy
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    grid = rng.uniform(-40, 40, (6, 6, 3)).astype(np.float32)
    blotch = np.stack(
        [
            np.asarray(Image.fromarray(grid[..., c]).resize((size, size), Image.BILINEAR))
            for c in range(3)
        ],
        axis=-1,
    )
    return img + blotch + rng.normal(0, 8, (size, size, 3))


def _draw(
    draw: ImageDraw.ImageDraw, shape: str, box: np.ndarray, colour: tuple, rng: np.random.Generator
) -> None:
    x1, y1, x2, y2 = box.tolist()
    w, h = x2 - x1, y2 - y1
    # PIL fills pixels x1..x2 inclusive; drawing to x2 - 1 makes the box exact.
    if shape == "rectangle":
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=colour)
    elif shape == "ellipse":
        draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=colour)
    elif shape == "triangle":
        apex = x1 + rng.uniform(0.2, 0.8) * w
        draw.polygon([(x1, y2 - 1), (x2 - 1, y2 - 1), (apex, y1)], fill=colour)
    elif shape == "cross":
        t = max(1.5, 0.17 * min(w, h))
        cx, cy = x1 + w / 2, y1 + h / 2
        draw.rectangle((x1, cy - t, x2 - 1, cy + t), fill=colour)
        draw.rectangle((cx - t, y1, cx + t, y2 - 1), fill=colour)
    elif shape == "ring":
        t = max(2, round(0.18 * min(w, h)))
        draw.ellipse((x1, y1, x2 - 1, y2 - 1), outline=colour, width=t)


def synth_image(
    rng: np.random.Generator,
    size: int = 256,
    empty_prob: float = 0.1,
    max_objects: int = 6,
    object_size: tuple[float, float] | None = None,
    min_objects: int = 1,
) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """One RGB image with its boxes (float32 [N, 4] xyxy pixels) and labels (1..5):
    ``min_objects`` to ``max_objects`` objects whose side is log-uniform in ``object_size`` pixels (default 5%
    to 55% of the image), overlapping each other by IoU 0.3 at most."""
    low, high = object_size or (0.05 * size, 0.55 * size)
    base = _background(rng, size)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    boxes: list[np.ndarray] = []
    labels: list[int] = []
    count = 0 if rng.random() < empty_prob else int(rng.integers(min_objects, max_objects + 1))
    attempts = 0
    while len(boxes) < count and attempts < max(50, 10 * count):
        attempts += 1
        side = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        aspect = float(np.exp(rng.uniform(np.log(0.6), np.log(1.7))))
        w = max(6, round(side * np.sqrt(aspect)))
        h = max(6, round(side / np.sqrt(aspect)))
        if w >= size or h >= size:
            continue
        x1, y1 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
        box = np.array([x1, y1, x1 + w, y1 + h], np.float32)
        if boxes and box_iou(box[None], np.stack(boxes)).max() > 0.3:
            continue
        # A colour far from the background under the object, so every object is visible.
        local = base[y1 : y1 + h, x1 : x1 + w].reshape(-1, 3).mean(0)
        colour = rng.uniform(0, 255, 3)
        for _ in range(10):
            if np.abs(colour - local).max() > 80:
                break
            colour = rng.uniform(0, 255, 3)
        cls = int(rng.integers(0, len(SHAPES)))
        _draw(draw, SHAPES[cls], box, tuple(int(c) for c in colour), rng)
        boxes.append(box)
        labels.append(cls + 1)
    return (
        img,
        np.stack(boxes) if boxes else np.zeros((0, 4), np.float32),
        np.asarray(labels, np.int64),
    )


def write_synth(
    out: str | Path,
    n: int,
    size: int = 256,
    grayscale: bool = False,
    seed: int = 0,
    empty_prob: float = 0.1,
    max_objects: int = 6,
    object_size: tuple[float, float] | None = None,
    min_objects: int = 1,
) -> Path:
    """Write ``n`` images to ``out/images/`` and ``out/annotations.json`` (COCO); returns the
    JSON path. ``min_objects``, ``max_objects`` and ``object_size`` as in :func:`synth_image` (many small
    objects in a large image make an aerial-like scene for tiled training)."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for i in range(1, n + 1):
        img, boxes, labels = synth_image(
            rng, size, empty_prob, max_objects, object_size, min_objects
        )
        if grayscale:
            img = img.convert("L")
        name = f"images/{i:06d}.png"
        img.save(out / name, compress_level=1)
        images.append({"id": i, "file_name": name, "width": size, "height": size})
        for box, label in zip(boxes.tolist(), labels.tolist(), strict=True):
            x1, y1, x2, y2 = box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": label,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": i + 1, "name": s, "supercategory": "shape"} for i, s in enumerate(SHAPES)]
    path = out / "annotations.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    return path


def write_synth_classes(
    out: str | Path,
    n: int,
    size: int = 64,
    grayscale: bool = False,
    seed: int = 0,
    val_fraction: float = 0.2,
) -> tuple[int, int]:
    """A classification dataset of the same shapes: ``n`` images of ``size`` pixels, each one
    shape filling 45-90% of the side on a textured background, in the class-per-subfolder
    layout ``out/train/<shape>/`` and ``out/val/<shape>/`` (``val_fraction`` of each class's
    images). Classes take turns, so they are balanced. Returns (train, val) image counts."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    per_class = [0] * len(SHAPES)
    counts = {"train": 0, "val": 0}
    every = round(1 / val_fraction) if val_fraction > 0 else 0  # every n-th image of a class
    for i in range(n):
        cls = i % len(SHAPES)
        img, labels = None, np.zeros(0)
        while not len(labels) or labels[0] != cls + 1:  # draw until the turn's shape comes
            img, _, labels = synth_image(rng, size, 0.0, 1, (0.45 * size, 0.9 * size), 1)
        if grayscale:
            img = img.convert("L")
        nth = per_class[cls]
        per_class[cls] += 1
        split = "val" if every and nth % every == every - 1 else "train"
        folder = out / split / SHAPES[cls]
        folder.mkdir(parents=True, exist_ok=True)
        img.save(folder / f"{i + 1:06d}.png", compress_level=1)
        counts[split] += 1
    return counts["train"], counts["val"]
