"""The one record type every reader produces, and the dataset that holds them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .problems import ProblemLog


@dataclass
class ImageRecord:
    """One image and its annotations.

    Attributes:
        file_name: the image path as written in the annotations, relative to the dataset's
            image root (forward slashes).
        path: the resolved image file (inside the dataset root), or None when the image
            comes from memory (``image`` is set).
        width, height: the size stated by the annotations (or read from the image header
            when the format has none); None when unknown.
        boxes: float32 [N, 4] x1y1x2y2 in pixels (may still hold invalid boxes: the checks
            report and fix them).
        labels: int64 [N], contiguous 1..K (0 is background).
        iscrowd: bool [N]; crowd regions are not trained on and are ignored by COCO metrics.
        ignore: bool [N]; e.g. Pascal VOC ``difficult``: excluded like crowd regions.
        image_id: a stable integer id (the COCO id when there is one).
        ann_ids: int64 [N] where each box came from: the COCO annotation id, the YOLO row,
            the CSV line or the VOC object index (-1 when unknown).
        ann_file: the annotation file the boxes came from, for messages.
        image: an in-memory image (e.g. streamed from the Hugging Face hub), else None.
        skip: a problem kind when the reader already refused this image (e.g.
            ``unsafe_path``); the checks then skip it and count why.
        window: ``(x1, y1, x2, y2)`` when the record stands for a region of its image (a
            tile, or a block of a spatial split): reading it gives that crop, and ``boxes``,
            ``width`` and ``height`` are in the crop's pixels. None for the whole image.
    """

    file_name: str
    path: Path | None
    width: int | None
    height: int | None
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    iscrowd: np.ndarray | None = None
    ignore: np.ndarray | None = None
    image_id: int = 0
    ann_ids: np.ndarray | None = None
    image: object | None = None
    skip: str | None = None
    ann_file: str = ""
    window: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        n = len(self.boxes)
        if len(self.labels) != n:
            raise InputError(f"{self.file_name}: {n} boxes but {len(self.labels)} labels")
        self.iscrowd = _flags(self.iscrowd, n)
        self.ignore = _flags(self.ignore, n)
        if self.ann_ids is None:
            self.ann_ids = np.full((n,), -1, np.int64)
        self.ann_ids = np.asarray(self.ann_ids, dtype=np.int64).reshape(-1)

    @property
    def num_boxes(self) -> int:
        return len(self.boxes)

    def set_annotations(
        self,
        boxes: object,
        labels: object,
        ann_ids: object = None,
        iscrowd: object = None,
        ignore: object = None,
    ) -> None:
        """Replace the annotations (sequences or arrays; missing flags are all False)."""
        self.boxes, self.labels, self.ann_ids = boxes, labels, ann_ids
        self.iscrowd, self.ignore = iscrowd, ignore
        self.__post_init__()

    def subset(self, keep: np.ndarray) -> ImageRecord:
        """A copy holding only the annotations selected by ``keep`` (mask or indices)."""
        return ImageRecord(
            self.file_name,
            self.path,
            self.width,
            self.height,
            self.boxes[keep],
            self.labels[keep],
            self.iscrowd[keep],
            self.ignore[keep],
            self.image_id,
            self.ann_ids[keep],
            self.image,
            self.skip,
            self.ann_file,
            self.window,
        )


def read_names_file(folder: Path, candidates: tuple[str, ...]) -> list[str] | None:
    """Class names, one per line, from the first of ``candidates`` present in ``folder``."""
    for name in candidates:
        if (folder / name).is_file():
            lines = (folder / name).read_text().splitlines()
            return [line.strip() for line in lines if line.strip()]
    return None


def _flags(values: np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.zeros((n,), bool)
    return np.asarray(values, dtype=bool).reshape(-1)


def label_name(class_names: Sequence[str] | None, label: int) -> str:
    """The name of class ``label`` (1..K-1; 0 is background), or the number as text when the
    names are unknown or do not cover it."""
    if class_names and 0 < label <= len(class_names):
        return class_names[label - 1]
    return str(label)


@dataclass
class DetectionDataset:
    """Records of one split, the ordered class names (index i is label i + 1), and the
    problems met while reading.

    Attributes:
        root: the folder image paths are confined to.
        source: what was read (a file or folder), for messages.
        format: ``coco``, ``yolo``, ``voc``, ``csv`` or ``hf``.
        split: the split name when the source has several.
        dropped_at_read: annotations the reader could not turn into boxes, by problem kind
            (each is also in ``problems``), so that counts add up to the input.
    """

    root: Path
    class_names: list[str]
    images: list[ImageRecord]
    problems: ProblemLog = field(default_factory=ProblemLog)
    source: str = ""
    format: str = ""
    split: str | None = None
    dropped_at_read: Counter = field(default_factory=Counter)

    def drop(self, kind: str, message: str, **where: object) -> None:
        """Record an annotation the reader could not use."""
        self.problems.add(kind, message, **where)
        self.dropped_at_read[kind] += 1

    @property
    def annotation_word(self) -> str:
        """What ``ImageRecord.ann_ids`` count in this format, for messages."""
        return {"coco": "id", "yolo": "row", "csv": "line", "voc": "object"}.get(self.format, "box")

    @property
    def num_classes(self) -> int:
        """Classes including background."""
        return len(self.class_names) + 1

    def __len__(self) -> int:
        return len(self.images)

    def instance_counts(self) -> np.ndarray:
        """Int64Array[K]: boxes trained on per label (crowd and ignored boxes excluded);
        index 0, the background, is always 0."""
        counts = np.zeros(self.num_classes, np.int64)
        for rec in self.images:
            np.add.at(counts, rec.labels[~(rec.iscrowd | rec.ignore)], 1)
        return counts

    @property
    def num_boxes(self) -> int:
        return sum(r.num_boxes for r in self.images)
