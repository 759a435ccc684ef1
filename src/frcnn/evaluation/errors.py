"""What the errors are: each false positive and missed object gets one type, and each type
the AP50 it costs, in the style of TIDE (Bolya et al., "TIDE: A General Toolbox for
Identifying Object Detection Errors", ECCV 2020).

The rules are those of the authors' ``tidecv`` package (its numbers are the test oracle):

- Per image, detections are sorted by score and cut to ``max_dets``. Each, in that order,
  takes the unused same-class ground truth of highest IoU if that IoU is at least 0.5 (a
  true positive). An unmatched detection covering a same-class crowd/ignore region (IoA at
  least 0.5, as COCO) is left out of AP. This is the evaluation's one matching
  (:func:`frcnn.evaluation.matching.match_image`); the error types are read from it.
- Every other detection gets the first type that fits: **Bkg** in an image without ground
  truth; **Loc** when its best same-class IoU lies in [0.1, 0.5] (right class, box poor);
  **Cls** when it overlaps another class's object at IoU >= 0.5 (box right, class wrong);
  **Dupe** when its same-class object was already taken by a higher-scoring detection;
  **Bkg** when it overlaps no object above IoU 0.1 (a false alarm on background); else
  **Both** (wrong class and poor box). An object matched by nothing and not the target of
  a Cls or Loc error is **Miss**.
- dAP of a type: the AP50 gained when only those errors are fixed. A Cls or Loc error
  becomes a true positive when its object is unmatched and it is the highest-scoring Cls/Loc
  error on that object (else it is removed); Dupe, Bkg and Both detections are removed; a
  Miss is taken out of the ground-truth count. **FalsePos** (every false positive scored
  below every true positive) and **FalseNeg** (every unmatched object removed) bound what
  perfect precision or recall would give.

AP here is TIDE's: 101 recall points, classes with ground truth or detections averaged (a
class with detections but no ground truth counts 0), so its base AP50 can differ slightly
from COCO's, which caps detections per class and leaves such classes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..boxes.overlap import box_iou
from ..data.records import DetectionDataset, ImageRecord
from ..defaults import ERROR_TYPES
from .matching import POS_IOU, ImageMatch, average_precision, detection_arrays, match_image
from .numbers import json_row

SPECIAL_TYPES = ("FalsePos", "FalseNeg")
DESCRIPTIONS = {
    "Cls": "right box, wrong class (IoU >= 0.5 with an object of another class)",
    "Loc": "right class, poor box (best IoU with its class in [0.1, 0.5])",
    "Both": "wrong class and poor box",
    "Dupe": "a second detection of an object already found",
    "Bkg": "a detection where there is no object (IoU <= 0.1 with every object)",
    "Miss": "an object no detection found (not even a Cls or Loc error)",
    "FalsePos": "all false positives removed (perfect precision)",
    "FalseNeg": "all missed objects removed (perfect recall)",
}
# The kind of each kept detection: a true positive or one of the five detection errors.
KINDS = ("TP", "Cls", "Loc", "Both", "Dupe", "Bkg")
TP, CLS, LOC, BOTH, DUPE, BKG = range(6)
BG_IOU = 0.1  # a detection overlapping no object above this is background
# tidecv reads precision at x / 100 (COCO at np.linspace's values: they differ in the last bit).
TIDE_RECALLS = np.arange(101) / 100


@dataclass
class ImageErrors:
    """One image's detections and objects, typed.

    Attributes:
        order: indices of the kept detections (by score, at most ``max_dets``) into the
            image's detections; the other arrays over detections follow this order.
        kind: [P] a code of :data:`KINDS` per kept detection.
        ignored: [P] inside a crowd/ignore region of its class (left out of AP).
        target: [P] the object (index into the record's boxes) a true positive matched or a
            Cls/Loc error refers to; -1 for the others.
        matched: [G] per box of the record: found by a true positive.
        usable: [G] the unmatched target of a Cls or Loc error.
        missed: [G] a regular object neither matched nor usable (a Miss).
    """

    order: np.ndarray
    kind: np.ndarray
    ignored: np.ndarray
    target: np.ndarray
    matched: np.ndarray
    usable: np.ndarray
    missed: np.ndarray

    def counts(self) -> dict[str, int]:
        """Errors of each type in this image (ignored detections included, as TIDE)."""
        found = np.bincount(self.kind, minlength=len(KINDS))
        return {
            **{KINDS[k]: int(found[k]) for k in range(1, len(KINDS))},
            "Miss": int(self.missed.sum()),
        }


def _error_kinds(
    iou: np.ndarray, same: np.ndarray, used: np.ndarray, pos: float, bg: float
) -> tuple[np.ndarray, np.ndarray]:
    """The error kind and target object (-1 for none) of unmatched detections [P, G]."""
    rows = np.arange(iou.shape[0])
    cls_iou = iou * same
    best_same = cls_iou.argmax(1)
    loc = (bg <= cls_iou[rows, best_same]) & (cls_iou[rows, best_same] <= pos)
    other = iou * ~same
    best_other = other.argmax(1)
    cls = ~loc & (other[rows, best_other] >= pos)
    dupe = ~loc & ~cls & ((cls_iou * used[None, :]).max(1) >= pos)
    bkg = ~loc & ~cls & ~dupe & (iou.max(1) <= bg)
    kind = np.select([loc, cls, dupe, bkg], [LOC, CLS, DUPE, BKG], BOTH)
    target = np.select([loc, cls], [best_same, best_other], -1)
    return kind, target


def classify_image(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    rec: ImageRecord,
    max_dets: int = 100,
    match: ImageMatch | None = None,
) -> ImageErrors:
    """Type every error of one image's detections (xyxy, original pixels) against its
    record's objects (see the module's rules), from the one matching (:func:`~frcnn
    .evaluation.matching.match_image`; given as ``match``, or made here)."""
    if match is None:
        match = match_image(
            boxes, scores, labels, rec.boxes, rec.labels, rec.iscrowd | rec.ignore, max_dets
        )
    order = match.order
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)[order]
    labels = np.asarray(labels, np.int64)[order]
    regular = np.flatnonzero(~(rec.iscrowd | rec.ignore))
    gt = rec.boxes.astype(np.float64)
    iou = box_iou(boxes, gt[regular]) if len(regular) else np.zeros((len(boxes), 0))
    same = labels[:, None] == rec.labels[regular][None, :]
    taken = match.among_regular(rec.iscrowd | rec.ignore)
    used = np.zeros(len(regular), bool)
    used[taken[taken >= 0]] = True
    kind = np.full(len(boxes), TP, np.int64)
    target = taken.copy()
    wrong = taken < 0
    if len(regular) == 0:
        kind[wrong] = BKG
    elif wrong.any():
        kind[wrong], target[wrong] = _error_kinds(iou[wrong], same[wrong], used, POS_IOU, BG_IOU)
    usable = np.zeros(len(regular), bool)
    fixes = (kind == CLS) | (kind == LOC)
    usable[target[fixes]] = True
    usable &= ~used
    whole = np.zeros(len(gt), bool)
    matched, usable_all, missed = whole.copy(), whole.copy(), whole.copy()
    matched[regular], usable_all[regular], missed[regular] = used, usable, ~used & ~usable
    target = np.where(target >= 0, regular[np.maximum(target, 0)] if len(regular) else -1, -1)
    return ImageErrors(order, kind, match.ignored, target, matched, usable_all, missed)


@dataclass
class ErrorBreakdown:
    """The error types of a dataset's detections and the AP50 each costs.

    Attributes:
        ap50: TIDE's AP50 of the detections as they are (a fraction, like every AP here).
        dap: the AP50 gained by fixing each type alone (:data:`ERROR_TYPES`, then the
            bounds :data:`SPECIAL_TYPES`).
        counts: how many errors of each of :data:`ERROR_TYPES`.
        per_class: one row per class: its AP50, and per type its count (``n_<type>``) and
            dAP (``dAP_<type>``); NaN where the class has no ground truth or detections.
        images: each image's typed detections and objects, by image id.
    """

    ap50: float
    dap: dict[str, float]
    counts: dict[str, int]
    per_class: list[dict[str, object]]
    images: dict[int, ImageErrors] = field(repr=False, default_factory=dict)

    def to_json(self) -> dict:
        return {
            "ap50": round(self.ap50, 6),
            "dAP": {k: round(v, 6) for k, v in self.dap.items()},
            "counts": dict(self.counts),
            "per_class": [json_row(r) for r in self.per_class],
        }

    def table(self) -> str:
        """The breakdown as ``frcnn eval`` prints it: one row per type, dAP and count."""
        lines = [f"{'error':<10}{'dAP50':>8}{'count':>8}  meaning"]
        for t in (*ERROR_TYPES, *SPECIAL_TYPES):
            count = f"{self.counts[t]:>8}" if t in self.counts else f"{'':>8}"
            lines.append(f"{t:<10}{self.dap[t]:>8.3f}{count}  {DESCRIPTIONS[t]}")
        return "\n".join(lines)


@dataclass
class _Points:
    """Every kept detection of the dataset, in image then score order, and every object."""

    cls: np.ndarray
    score: np.ndarray
    kind: np.ndarray
    ignored: np.ndarray
    target_cls: np.ndarray  # class of the object a Cls/Loc error refers to (0 for none)
    fixable: np.ndarray  # the Cls/Loc errors that become true positives when fixed
    n_gt: np.ndarray  # regular objects per class
    missed: np.ndarray  # Miss errors per class
    unmatched: np.ndarray  # unmatched regular objects per class


def _gather(
    ds: DetectionDataset,
    by_id: Mapping[int, dict],
    max_dets: int,
    k1: int,
    matches: Mapping[int, ImageMatch] | None,
) -> tuple:
    """Every image classified, and the dataset-wide arrays the fixes need."""
    images: dict[int, ImageErrors] = {}
    cols: dict[str, list] = {k: [] for k in ("cls", "score", "kind", "ign", "tgt", "tcls", "free")}
    n_gt, missed, unmatched = (np.zeros(k1, np.int64) for _ in range(3))
    offset = 0
    for rec in ds.images:
        boxes, scores, labels = detection_arrays(by_id.get(int(rec.image_id)))
        match = matches.get(int(rec.image_id)) if matches is not None else None
        e = classify_image(boxes, scores, labels, rec, max_dets, match)
        images[int(rec.image_id)] = e
        regular = ~(rec.iscrowd | rec.ignore)
        n_gt += np.bincount(rec.labels[regular], minlength=k1)
        missed += np.bincount(rec.labels[e.missed], minlength=k1)
        unmatched += np.bincount(rec.labels[regular & ~e.matched], minlength=k1)
        has = e.target >= 0
        cols["cls"].append(labels[e.order])
        cols["score"].append(scores[e.order])
        cols["kind"].append(e.kind)
        cols["ign"].append(e.ignored)
        cols["tgt"].append(np.where(has, e.target + offset, -1))
        cols["tcls"].append(
            np.where(has, rec.labels[np.maximum(e.target, 0)] if len(rec.labels) else 0, 0)
        )
        cols["free"].append(has & ~e.matched[np.maximum(e.target, 0)] if len(rec.labels) else has)
        offset += len(rec.boxes)
    c = {k: np.concatenate(v) if v else np.zeros(0) for k, v in cols.items()}
    fixable = _best_per_object(c["kind"], c["score"], c["tgt"], c["free"].astype(bool))
    points = _Points(
        c["cls"].astype(np.int64),
        c["score"].astype(np.float64),
        c["kind"].astype(np.int64),
        c["ign"].astype(bool),
        c["tcls"].astype(np.int64),
        fixable,
        n_gt,
        missed,
        unmatched,
    )
    return images, points


def _best_per_object(
    kind: np.ndarray, score: np.ndarray, target: np.ndarray, free: np.ndarray
) -> np.ndarray:
    """The Cls/Loc errors that a fix turns into true positives: per unmatched object, the
    highest-scoring error on it (the earliest on a tie)."""
    fixable = np.zeros(len(kind), bool)
    cand = np.flatnonzero(((kind == CLS) | (kind == LOC)) & free)
    if len(cand):
        ranked = cand[np.lexsort((cand, -score[cand], target[cand]))]
        first = np.r_[True, target[ranked][1:] != target[ranked][:-1]]
        fixable[ranked[first]] = True
    return fixable


def _class_aps(cls: np.ndarray, score: np.ndarray, tp: np.ndarray, n_gt: np.ndarray) -> np.ndarray:
    """AP50 per class [K + 1] as TIDE computes it: the matching's 101-point AP
    (:func:`~frcnn.evaluation.matching.average_precision`), and 0 for a class with
    detections but no ground truth (NaN with neither)."""
    aps = average_precision(tp, score, cls, n_gt, TIDE_RECALLS)
    counts = np.bincount(cls, minlength=len(n_gt))[: len(n_gt)]
    aps[(n_gt == 0) & (counts > 0)] = 0.0
    return aps


def _fixed_aps(p: _Points, fix: str) -> np.ndarray:
    """Per-class AP50 with one type of error fixed (or a special bound)."""
    base = ~p.ignored
    tp = p.kind == TP
    cls, score, n_gt = p.cls, p.score, p.n_gt
    if fix in ("Cls", "Loc"):
        mine = p.kind == KINDS.index(fix)
        turned = mine & p.fixable
        base = (base & ~mine) | turned
        tp = tp | turned
        cls = np.where(turned & (fix == "Cls"), p.target_cls, cls)
    elif fix in ("Both", "Dupe", "Bkg"):
        base = base & (p.kind != KINDS.index(fix))
    elif fix == "Miss":
        n_gt = n_gt - p.missed
    elif fix == "FalsePos":
        score = tp.astype(np.float64)
    elif fix == "FalseNeg":
        n_gt = n_gt - p.unmatched
    return _class_aps(cls[base], score[base], tp[base], n_gt)


def _mean(aps: np.ndarray) -> float:
    return float(np.nanmean(aps)) if np.isfinite(aps).any() else 0.0


def error_breakdown(
    ds: DetectionDataset,
    predictions: Mapping[int, dict],
    max_dets: int = 100,
    matches: Mapping[int, ImageMatch] | None = None,
) -> ErrorBreakdown:
    """Type every error of ``predictions`` (per image id: ``boxes`` xyxy, ``scores``,
    ``labels``, numpy) against ``ds`` and measure what each type costs (module doc);
    ``matches`` are the images' matchings when already made (the evaluation's own)."""
    k1 = max(
        ds.num_classes,
        1 + max((int(np.max(p["labels"], initial=0)) for p in predictions.values()), default=0),
    )
    images, points = _gather(ds, predictions, max_dets, k1, matches)
    base = _fixed_aps(points, "none")
    ap = _mean(base)
    dap, per_type = {}, {}
    for t in (*ERROR_TYPES, *SPECIAL_TYPES):
        fixed = _fixed_aps(points, t)
        gain = _mean(fixed) - ap
        dap[t] = max(gain, 0.0) if t in ERROR_TYPES else gain
        per_type[t] = np.maximum(fixed - base, 0.0)
    counts = {t: int((points.kind == KINDS.index(t)).sum()) for t in ERROR_TYPES[:-1]}
    counts["Miss"] = int(points.missed.sum())
    per_class = []
    for c, name in enumerate(ds.class_names, start=1):
        row: dict[str, object] = {"class": name, "AP50": float(base[c]) if c < k1 else float("nan")}
        for t in ERROR_TYPES:
            n = (
                points.missed[c]
                if t == "Miss"
                else ((points.cls == c) & (points.kind == KINDS.index(t))).sum()
            )
            row[f"n_{t}"] = int(n)
            row[f"dAP_{t}"] = float(per_type[t][c])
        per_class.append(row)
    return ErrorBreakdown(ap, dap, counts, per_class, images)
