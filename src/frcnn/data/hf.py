"""Hugging Face datasets in the schema of ``detection-datasets/coco``, streamed.

Each row has an ``image`` and ``objects`` with ``bbox`` (``[x, y, width, height]`` pixels by
default) and ``category`` (0-based, ideally a ``ClassLabel`` carrying the names). Needs the
optional ``datasets`` package (``pip install frcnn[hf]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from ..errors import InputError, SetupError, require
from .records import DetectionDataset, ImageRecord


def parse_source(source: str) -> tuple[str, str]:
    """``hf:NAME[:SPLIT]`` -> ``(NAME, SPLIT)``; NAME may be a hub id or a local folder."""
    body = source.removeprefix("hf:")
    name, _, split = body.partition(":")
    if not name:
        raise InputError(f"{source!r}: expected hf:NAME[:SPLIT]")
    return name, split or "train"


def open_stream(name: str, split: str):
    datasets: Any = require("datasets", "hf", "reading hf: sources")
    try:
        return datasets.load_dataset(name, split=split, streaming=True)
    except (ConnectionError, OSError) as err:
        raise SetupError(
            f"could not open Hugging Face dataset {name!r} split {split!r}: {err}. It streams "
            "from the hub, which needs internet access (or pass a local folder as NAME)."
        ) from err


def class_names(stream) -> list[str] | None:
    """Names from the ``objects.category`` ClassLabel, when the features carry them."""
    features = getattr(stream, "features", None)
    if not features or "objects" not in features:
        return None
    objects = features["objects"]
    category = (
        objects["category"]
        if isinstance(objects, dict)
        else getattr(objects, "feature", {}).get("category")
    )
    label = getattr(category, "feature", category)
    names = getattr(label, "names", None)
    return list(names) if names else None


def row_boxes(row: dict, bbox_format: str) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes xyxy float32 [N, 4], labels int64 [N] in 1..K)`` of one row."""
    objects = row.get("objects") or {}
    boxes = np.asarray(objects.get("bbox", []), np.float32).reshape(-1, 4)
    if bbox_format == "xywh":
        boxes = boxes.copy()
        boxes[:, 2:] += boxes[:, :2]
    elif bbox_format != "xyxy":
        raise InputError(f"bbox_format must be 'xywh' or 'xyxy', got {bbox_format!r}")
    labels = np.asarray(objects.get("category", []), np.int64).reshape(-1) + 1
    return boxes, labels


def read_hf(
    source: str, split: str | None = None, bbox_format: str = "xywh", limit: int | None = None
) -> DetectionDataset:
    """Stream a split into records with the images held in memory (for checking, converting
    or small datasets; train on large ones with :class:`HFStreamDataset`)."""
    name, default_split = parse_source(source)
    split = split or default_split
    stream = open_stream(name, split)
    names = class_names(stream)
    records = []
    for i, row in enumerate(stream):
        if limit is not None and i >= limit:
            break
        image = row["image"]
        boxes, labels = row_boxes(row, bbox_format)
        image_id = int(row.get("image_id", i + 1))
        records.append(
            ImageRecord(
                f"{image_id:012d}.png",
                None,
                image.width,
                image.height,
                boxes,
                labels,
                image_id=image_id,
                image=image,
            )
        )
    if names is None:
        top = max((int(r.labels.max()) for r in records if r.num_boxes), default=0)
        names = [str(c) for c in range(top)]
    return DetectionDataset(Path("."), names, records, source=source, format="hf", split=split)


class HFStreamDataset(IterableDataset):
    """Streams ``(image, target)`` pairs without storing the dataset, through the same item
    pipeline as :class:`~frcnn.data.loader.DetectionTorchDataset` (augmentation, resizing).
    With several DataLoader workers each reads a disjoint shard of the stream."""

    def __init__(
        self,
        source: str,
        split: str | None = None,
        bbox_format: str = "xywh",
        augment=None,
        image_size: int | None = None,
    ) -> None:
        from .loader import DetectionTorchDataset

        self.name, default_split = parse_source(source)
        self.split = split or default_split
        self.bbox_format = bbox_format
        self.items = DetectionTorchDataset(DetectionDataset(Path("."), [], []), augment, image_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        from .images import to_rgb_array

        stream = open_stream(self.name, self.split)
        info = torch.utils.data.get_worker_info()
        for i, row in enumerate(stream):
            if info is not None and i % info.num_workers != info.id:
                continue
            boxes, labels = row_boxes(row, self.bbox_format)
            valid = (
                np.isfinite(boxes).all(1)
                & (boxes[:, 2] > boxes[:, 0])
                & (boxes[:, 3] > boxes[:, 1])
            )
            image, target = self.items.make_item(
                to_rgb_array(row["image"]),
                boxes[valid],
                labels[valid],
                np.zeros(int(valid.sum()), bool),
                int(row.get("image_id", i + 1)),
            )
            # Streamed rows are not checked ahead of time: invalid boxes are dropped here and
            # counted, for the training loop to report.
            target["invalid_dropped"] = torch.tensor(int((~valid).sum()))
            yield image, target
