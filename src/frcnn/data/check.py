"""The dataset checks shared by ``frcnn data check`` and training: find, fix or skip, count.

:func:`check_dataset` returns a clean copy of the dataset and a :class:`DataReport` whose
counts always add up to the input: every image is used or skipped (with a reason), every
box is used, ignored (crowd/difficult), fixed-and-used, or dropped (with a reason).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import InputError
from .images import MAX_ASPECT, image_size, load_image, to_rgb_array, truncation
from .problems import KINDS, ProblemLog
from .records import DetectionDataset, ImageRecord

log = logging.getLogger("frcnn")

# Coordinates this far (pixels) past the image edge are float rounding from normalised
# formats, not annotation errors: they are clipped without being reported.
EDGE_TOLERANCE = 0.01

# COCO's object-size bins, by box area in pixels.
SMALL_AREA = 32**2
MEDIUM_AREA = 96**2


@dataclass
class DataReport:
    """What the checks found and did. ``skipped``, ``dropped`` and ``fixed`` are keyed by
    problem kind (see :data:`frcnn.data.problems.KINDS`)."""

    images_in: int = 0
    boxes_in: int = 0
    images_used: int = 0
    boxes_used: int = 0
    boxes_ignored: int = 0
    images_without_boxes: int = 0
    images_skipped: Counter = field(default_factory=Counter)
    boxes_dropped: Counter = field(default_factory=Counter)
    boxes_fixed: Counter = field(default_factory=Counter)
    instances: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)
    problems: ProblemLog = field(default_factory=ProblemLog)

    @property
    def num_errors(self) -> int:
        return self.problems.num_errors

    def adds_up(self) -> bool:
        return self.images_in == self.images_used + sum(
            self.images_skipped.values()
        ) and self.boxes_in == self.boxes_used + self.boxes_ignored + sum(
            self.boxes_dropped.values()
        )

    def merge(self, other: DataReport) -> None:
        for name in (
            "images_in",
            "boxes_in",
            "images_used",
            "boxes_used",
            "boxes_ignored",
            "images_without_boxes",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("images_skipped", "boxes_dropped", "boxes_fixed", "instances", "sizes"):
            getattr(self, name).update(getattr(other, name))
        self.problems.extend(other.problems)

    def summary_lines(self) -> list[str]:
        """The accounting, one reason a line, for logs."""
        lines = [
            f"images: {self.images_in} in, {self.images_used} used "
            f"({self.images_without_boxes} without boxes), {sum(self.images_skipped.values())} skipped",
        ]
        lines += [
            f"  skipped {n} images: {KINDS[k][2]} [{k}]"
            for k, n in sorted(self.images_skipped.items())
        ]
        fixed = sum(self.boxes_fixed.values())
        lines.append(
            f"boxes: {self.boxes_in} in, {self.boxes_used} used ({fixed} of them fixed), "
            f"{self.boxes_ignored} ignored (crowd/difficult), {sum(self.boxes_dropped.values())} dropped"
        )
        lines += [
            f"  fixed {n} boxes: {KINDS[k][2]}, {KINDS[k][1]} [{k}]"
            for k, n in sorted(self.boxes_fixed.items())
        ]
        lines += [
            f"  dropped {n} boxes: {_drop_reason(k)} [{k}]"
            for k, n in sorted(self.boxes_dropped.items())
        ]
        return lines

    def to_json(self) -> dict:
        return {
            "images": {
                "in": self.images_in,
                "used": self.images_used,
                "without_boxes": self.images_without_boxes,
                "skipped": dict(self.images_skipped),
            },
            "boxes": {
                "in": self.boxes_in,
                "used": self.boxes_used,
                "ignored": self.boxes_ignored,
                "fixed": dict(self.boxes_fixed),
                "dropped": dict(self.boxes_dropped),
            },
            "instances_per_class": dict(self.instances),
            "box_sizes": {k: self.sizes.get(k, 0) for k in ("small", "medium", "large")},
            "problems_by_kind": dict(self.problems.counts()),
            "errors": self.num_errors,
            "adds_up": self.adds_up(),
            "problems": self.problems.to_json(),
        }


def _drop_reason(kind: str) -> str:
    if KINDS[kind][1] == "image skipped":
        return f"in skipped images ({KINDS[kind][2]})"
    return KINDS[kind][2]


ImageCheck = Literal["full", "header", "none"]


def warn_skipped(report: DataReport, what: str) -> None:
    """Say how many images the checks left out of ``report``'s data, and why: nothing is
    left out silently. ``what`` names the data in the warning."""
    reasons = report.images_skipped
    if sum(reasons.values()):
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        log.warning(
            "warning: %s: %d of %d images left out (%s; `frcnn data check` lists them)",
            what,
            sum(reasons.values()),
            report.images_in,
            why,
        )


def check_dataset(
    ds: DetectionDataset, images: ImageCheck = "header", exif: bool = True
) -> tuple[DetectionDataset, DataReport]:
    """Check every image and box; return the usable dataset and the report.

    Args:
        ds: as read (may hold invalid boxes and refused images).
        images: ``full`` decodes every image (finds truncated files), ``header`` reads sizes
            only, ``none`` trusts the annotations.
        exif: apply EXIF orientation when reading sizes.
    """
    report = DataReport(problems=ProblemLog(list(ds.problems)))
    report.images_in = len(ds.images)
    report.boxes_in = ds.num_boxes + sum(ds.dropped_at_read.values())
    report.boxes_dropped.update(ds.dropped_at_read)
    clean: list[ImageRecord] = []
    for rec in ds.images:
        reason = rec.skip or _check_image(rec, ds, report.problems, images, exif)
        if reason is not None:
            report.images_skipped[reason] += 1
            if rec.num_boxes:
                report.boxes_dropped[reason] += rec.num_boxes
            continue
        rec = _check_boxes(rec, ds, report)
        clean.append(rec)
        report.images_used += 1
        trained = ~(rec.iscrowd | rec.ignore)
        report.boxes_used += int(trained.sum())
        report.boxes_ignored += int((~trained).sum())
        if not trained.any():
            report.images_without_boxes += 1
        report.instances.update(ds.class_names[c - 1] for c in rec.labels[trained].tolist())
        b = rec.boxes[trained]
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        report.sizes.update(
            {
                "small": int((area < SMALL_AREA).sum()),
                "medium": int(((area >= SMALL_AREA) & (area < MEDIUM_AREA)).sum()),
                "large": int((area >= MEDIUM_AREA).sum()),
            }
        )
    out = DetectionDataset(
        ds.root, list(ds.class_names), clean, report.problems, ds.source, ds.format, ds.split
    )
    return out, report


def check_chunks(
    chunks: Iterable[DetectionDataset], images: ImageCheck = "header", exif: bool = True
) -> DataReport:
    """The report of a dataset read a part at a time (a stream): each part checked as
    :func:`check_dataset` checks, the reports added up; nothing is kept."""
    report = DataReport()
    for part in chunks:
        report.merge(check_dataset(part, images, exif)[1])
    return report


def _check_image(
    rec: ImageRecord, ds: DetectionDataset, problems: ProblemLog, mode: ImageCheck, exif: bool
) -> str | None:
    """The problem kind that makes this image unusable, or None (then its size is known)."""
    where = dict(file=rec.file_name, image=rec.file_name)
    if rec.image is not None:
        arr = to_rgb_array(rec.image) if mode != "none" else None
        size = (arr.shape[1], arr.shape[0]) if arr is not None else (rec.width, rec.height)
    elif rec.path is None or not rec.path.is_file():
        problems.add("image_missing", f"image file not found under {ds.root}", **where)
        return "image_missing"
    elif mode == "none" and rec.width is not None and rec.height is not None:
        return None
    else:
        try:
            if mode == "full":
                arr = load_image(rec.path, exif)
                size = (arr.shape[1], arr.shape[0])
            else:
                size = image_size(rec.path, exif)
                cut = truncation(rec.path)
                if cut:
                    raise InputError(cut)
        except Exception as err:  # PIL raises many types for bad files; all mean unreadable
            problems.add("image_corrupt", f"cannot decode: {type(err).__name__}: {err}", **where)
            return "image_corrupt"
    if None not in size and max(size) > MAX_ASPECT * max(1, min(size)):
        problems.add(
            "image_extreme_aspect",
            f"{size[0]}x{size[1]} is more than {MAX_ASPECT}:1; train and predict on tiles (--tile)",
            **where,
        )
        return "image_extreme_aspect"
    if rec.width is None or rec.height is None:
        rec.width, rec.height = size
    elif (rec.width, rec.height) != tuple(size):
        hint = ""
        if (rec.height, rec.width) == tuple(size) and exif:
            hint = " (the image has an EXIF rotation; if the boxes were drawn on the unrotated image, read with EXIF orientation off)"
        problems.add(
            "image_size_mismatch",
            f"annotation says {rec.width}x{rec.height}, image is {size[0]}x{size[1]}{hint}",
            file=rec.ann_file or rec.file_name,
            image=rec.file_name,
        )
        return "image_size_mismatch"
    return None


def _check_boxes(rec: ImageRecord, ds: DetectionDataset, report: DataReport) -> ImageRecord:
    """Drop boxes that cannot be used, clip those partly outside, drop exact duplicates."""
    boxes = rec.boxes.copy()
    w, h = float(rec.width), float(rec.height)
    x1, y1, x2, y2 = boxes.T
    finite = np.isfinite(boxes).all(axis=1)
    with np.errstate(invalid="ignore"):
        degenerate = finite & ((x2 <= x1) | (y2 <= y1))
        outside = finite & ~degenerate & ((x2 <= 0) | (y2 <= 0) | (x1 >= w) | (y1 >= h))
        t = EDGE_TOLERANCE
        partly = (
            finite & ~degenerate & ~outside & ((x1 < -t) | (y1 < -t) | (x2 > w + t) | (y2 > h + t))
        )
    clip_kind = "yolo_out_of_range" if ds.format == "yolo" else "box_outside"
    for mask, kind in (
        (~finite, "box_nonfinite"),
        (degenerate, "box_degenerate"),
        (outside, "box_fully_outside"),
        (partly, clip_kind),
    ):
        for i in np.flatnonzero(mask):
            _box_problem(report, rec, ds, kind, int(i), boxes[i], w, h)
    boxes[finite] = np.clip(boxes[finite], 0, [w, h, w, h])
    if partly.any():
        report.boxes_fixed[clip_kind] += int(partly.sum())
    keep = finite & ~degenerate & ~outside
    for mask, kind in (
        (~finite, "box_nonfinite"),
        (degenerate, "box_degenerate"),
        (outside, "box_fully_outside"),
    ):
        if mask.any():
            report.boxes_dropped[kind] += int(mask.sum())
    # Exact duplicates (same label, same coordinates after clipping): keep the first.
    kept = np.flatnonzero(keep)
    rows = np.concatenate([rec.labels[kept, None].astype(np.float64), boxes[kept]], axis=1)
    _, first = np.unique(rows, axis=0, return_index=True)
    dup = np.setdiff1d(np.arange(len(kept)), first)
    for j in dup:
        _box_problem(report, rec, ds, "box_duplicate", int(kept[j]), boxes[kept[j]], w, h)
    if len(dup):
        report.boxes_dropped["box_duplicate"] += len(dup)
        keep[kept[dup]] = False
    out = rec.subset(keep)
    out.boxes = boxes[keep]
    return out


def _box_problem(
    report: DataReport,
    rec: ImageRecord,
    ds: DetectionDataset,
    kind: str,
    i: int,
    box: np.ndarray,
    w: float,
    h: float,
) -> None:
    coords = "[" + ", ".join(f"{v:g}" for v in box.tolist()) + "]"
    ann = rec.ann_ids[i]
    annotation = f"{ds.annotation_word} {ann}" if ann >= 0 else f"box {i}"
    report.problems.add(
        kind,
        f"{KINDS[kind][2]}: {coords} in a {w:g}x{h:g} image",
        file=rec.ann_file or rec.file_name,
        image=rec.file_name,
        annotation=annotation,
    )
