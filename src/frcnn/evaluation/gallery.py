"""The worst images: those with the most errors at the score threshold, each box drawn
with its error type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.records import DetectionDataset, ImageRecord, label_name
from ..errors import InputError
from .errors import ERROR_TYPES, KINDS, ImageErrors, classify_image
from .matching import detection_arrays, match_image


@dataclass
class WorstImage:
    """An image's errors among its detections scoring >= the threshold."""

    record: ImageRecord
    errors: ImageErrors
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def caption(self) -> str:
        parts = [f"{n} {t}" for t, n in self.counts.items() if n]
        return f"{Path(self.record.file_name).name}: {', '.join(parts)}"


def worst_images(
    ds: DetectionDataset,
    predictions: dict[int, dict],
    conf: float,
    n: int = 8,
    max_dets: int = 100,
    by: str | None = None,
) -> list[WorstImage]:
    """The ``n`` images with the most errors (detection errors and missed objects, or only
    the type ``by``, one of :data:`~frcnn.evaluation.errors.ERROR_TYPES`) among the
    detections scoring at least ``conf``, most first (ties: dataset order); images without
    such errors are left out."""
    if by is not None and by not in ERROR_TYPES:
        raise InputError(f"unknown error type {by!r}; choose from {', '.join(ERROR_TYPES)}")
    found = []
    for rec in ds.images:
        boxes, scores, labels = detection_arrays(predictions.get(int(rec.image_id)))
        ignore = rec.iscrowd | rec.ignore
        # the evaluation's matching, cut at conf
        match = match_image(boxes, scores, labels, rec.boxes, rec.labels, ignore, max_dets)
        match = match.first(int((scores[match.order] >= conf).sum()))
        e = classify_image(boxes, scores, labels, rec, max_dets, match)
        counts = e.counts()
        if counts[by] if by else sum(counts.values()):
            found.append(
                WorstImage(rec, e, boxes[e.order], scores[e.order], labels[e.order], counts)
            )
    totals = np.array([-(w.counts[by] if by else w.total) for w in found])
    return [found[i] for i in np.argsort(totals, kind="stable")[:n]]


def _drawn_boxes(w: WorstImage, names: Sequence[str]) -> tuple[tuple, tuple]:
    """What the gallery draws of one image: objects (found, missed, or the target of a
    Cls/Loc error) and detections, with their texts and error types."""
    e, rec = w.errors, w.record
    regular = ~(rec.iscrowd | rec.ignore)
    gt_types = np.where(e.missed, "Miss", np.where(e.matched, "TP", "Near"))
    keep = np.flatnonzero(regular)
    gt_texts = [
        ("missed " if e.missed[i] else "")
        + label_name(names, int(rec.labels[i]))
        + (" (Cls/Loc)" if e.usable[i] else "")
        for i in keep
    ]
    texts, types = [], []
    for i, kind in enumerate(e.kind.tolist()):
        name = label_name(names, int(w.labels[i]))
        tag = "" if kind == 0 else f"{KINDS[kind]} "
        truth = ""
        if KINDS[kind] == "Cls":
            truth = f" (is {label_name(names, int(rec.labels[e.target[i]]))})"
        texts.append(f"{tag}{name} {w.scores[i]:.2f}{truth}")
        types.append(KINDS[kind])
    truth = (rec.boxes[keep], gt_texts, [str(t) for t in gt_types[keep]])
    return truth, (w.boxes, texts, types)


def write_worst_images(
    ds: DetectionDataset,
    predictions: dict[int, dict],
    conf: float,
    out: Path,
    n: int = 8,
    max_dets: int = 100,
    exif: bool = True,
    by: str | None = None,
) -> list[WorstImage]:
    """``out`` (a JPEG): the worst images, objects on the left (missed ones named so),
    detections on the right coloured by error type. Returns the images shown."""
    from ..data.images import to_pil
    from ..data.loader import readable_images
    from .plots import error_grid

    worst = worst_images(ds, predictions, conf, n, max_dets, by)
    found = readable_images([w.record for w in worst], out.name, exif)
    if found:
        shown = [worst[i] for i, _ in found]
        images = [to_pil(image) for _, image in found]
        drawn = [_drawn_boxes(w, ds.class_names) for w in shown]
        error_grid(images, drawn, [w.caption() for w in shown], out)
    return worst
