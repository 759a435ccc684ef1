"""Everything an evaluation reports: COCO numbers, P/R/F1, per-class table, curves, confusion."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.records import DetectionDataset
from ..defaults import CONF
from ..errors import InputError
from ..io.atomic import atomic_write_csv, atomic_write_text
from .calibration import Reliability, reliability
from .coco import COCO_KEYS, CocoEvaluation, coco_ground_truth, coco_results
from .errors import ErrorBreakdown, error_breakdown
from .matching import ImageMatch, confusion_matrix, detection_arrays, match_image, pr_curves
from .numbers import cell, json_number, json_row
from .sizes import SizeTable, parse_sizes, size_table


@dataclass(frozen=True)
class EvalOptions:
    """How predictions are scored and reported, beside the threshold and the detection
    limit (which are the detector's, :class:`~frcnn.inference.options.InferenceOptions`).

    Attributes:
        size_bins: box sides in pixels bounding the per-size bins (None: COCO's 0 32 96 inf).
        score_weights: weights of mAP50 and F1-at-conf in ``EvalResult.score``.
        worst: images in ``worst_images.jpg`` (0: none).
        worst_by: rank the worst images by one error type (None: all errors).
    """

    size_bins: tuple[float, ...] | None = None
    score_weights: tuple[float, float] = (0.5, 0.5)
    worst: int = 8
    worst_by: str | None = None

    def __post_init__(self) -> None:
        if self.size_bins is not None:
            object.__setattr__(self, "size_bins", tuple(float(b) for b in self.size_bins))
        object.__setattr__(self, "score_weights", tuple(float(w) for w in self.score_weights))
        if self.worst < 0:
            raise InputError(f"worst must be >= 0, got {self.worst}")


@dataclass
class EvalResult:
    """Results of :func:`evaluate_detections`.

    One score threshold, ``conf``, for everything counted at a threshold: ``precision``,
    ``recall`` and ``f1`` (means over the classes with ground truth, at IoU 0.5), the
    per-class table's P, R and F1, the confusion matrix and the worst-images gallery. The
    COCO numbers (mAP) use every detection's score. ``*_best`` are at the threshold that
    maximises mean F1 (``best_threshold``), a hint for choosing ``conf``. ``score`` =
    weighted mAP50 and F1 at ``conf``. A precision is NaN (``null`` in JSON, ``-`` in the
    table) when no detection passes the threshold: undefined, not perfect.
    """

    coco: dict[str, float]
    coco_summary: str
    class_names: list[str]
    conf: float
    best_threshold: float
    precision: float
    recall: float
    f1: float
    precision_best: float
    recall_best: float
    f1_best: float
    score: float
    per_class: list[dict[str, object]]
    curves: dict[str, np.ndarray] = field(repr=False)
    coco_precision: np.ndarray = field(repr=False)
    confusion: np.ndarray = field(repr=False)
    num_images: int = 0
    errors: ErrorBreakdown | None = field(default=None, repr=False)
    calibration: Reliability | None = field(default=None, repr=False)
    sizes: SizeTable | None = field(default=None, repr=False)
    predictions: dict[int, dict] = field(default_factory=dict, repr=False)
    # Every detection left in AP (crowd-region ones out): ``scores``, ``labels`` and
    # ``correct`` (a true positive at IoU 0.5), as calibration learns from them.
    detections: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    # Names of 0.1 (precision, recall and F1 were always at conf under these).
    precision_at_conf = property(lambda self: self.precision)
    recall_at_conf = property(lambda self: self.recall)
    f1_at_conf = property(lambda self: self.f1)

    @property
    def map50(self) -> float:
        return self.coco["AP50"]

    @property
    def measurable(self) -> bool:
        """False when the ground truth holds no boxes: COCO then reports -1 and the score
        means nothing."""
        return self.coco["AP50"] >= 0

    def to_json(self) -> dict:
        at_conf = {"precision": self.precision, "recall": self.recall, "F1": self.f1}
        return {
            **{k: json_number(v) for k, v in self.coco.items()},
            "conf": self.conf,
            **{k: json_number(v) for k, v in at_conf.items()},
            **{f"{k}_at_conf": json_number(v) for k, v in at_conf.items()},
            "best_threshold": round(self.best_threshold, 4),
            "precision_best": json_number(self.precision_best),
            "recall_best": json_number(self.recall_best),
            "F1_best": json_number(self.f1_best),
            "score": json_number(self.score),
            "thresholds": THRESHOLDS_NOTE,
            "per_class": [json_row(r) for r in self.per_class],
            **({"errors": self.errors.to_json()} if self.errors else {}),
            **({"calibration": self.calibration.to_json()} if self.calibration else {}),
            **({"sizes": self.sizes.to_json()} if self.sizes else {}),
        }

    def all_row(self) -> dict[str, object]:
        """The ``all`` row: every image and instance, P, R and F1 at ``conf`` (means over the
        classes with ground truth), COCO mAP50 and mAP50-95."""
        return {
            "class": "all",
            "images": self.num_images,
            "instances": int(sum(int(r["instances"]) for r in self.per_class)),
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "F1": round(self.f1, 6),
            "mAP50": round(self.coco["AP50"], 6),
            "mAP50-95": round(self.coco["AP"], 6),
        }

    def table(self) -> str:
        """The per-class table, as printed by ``frcnn eval``."""
        title = f"P, R, F1 at score >= {self.conf} (IoU 0.5); mAP over all scores"
        head = f"{'class':<20}{'images':>8}{'instances':>10}{'P':>8}{'R':>8}{'F1':>8}{'mAP50':>8}{'mAP50-95':>10}"
        rows = [title, head]
        for r in [self.all_row(), *self.per_class]:
            cells = [cell(r[k], 8) for k in ("precision", "recall", "F1", "mAP50")]
            rows.append(
                f"{str(r['class'])[:19]:<20}{r['images']:>8}{r['instances']:>10}{''.join(cells)}"
                f"{cell(r['mAP50-95'], 10)}"
            )
        return "\n".join(rows)

    def write(self, out: str | Path) -> None:
        """``metrics.json``, ``per_class.csv`` (the ``all`` row first), ``per_size.csv`` and
        ``errors_per_class.csv`` in ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "metrics.json", json.dumps(self.to_json(), indent=2))
        _write_csv(out / "per_class.csv", [self.all_row(), *self.per_class])
        if self.sizes is not None:
            _write_csv(out / "per_size.csv", self.sizes.rows)
        if self.errors is not None:
            _write_csv(out / "errors_per_class.csv", self.errors.per_class)


THRESHOLDS_NOTE = (
    "precision, recall, F1, the per-class table's P/R/F1 and the confusion matrix count "
    "detections scoring >= conf; AP/mAP/AR use every detection's score"
)


def _write_csv(path: Path, rows: Sequence[dict]) -> None:
    atomic_write_csv(path, list(rows[0]), [json_row(r) for r in rows])


def _match_all(
    ds: DetectionDataset, by_id: dict[int, dict], conf: float, max_dets: int
) -> tuple[tuple, np.ndarray, np.ndarray, dict[int, ImageMatch]]:
    """Every image's detections matched to its ground truth once (:func:`match_image`:
    score order, at most ``max_dets``, IoU 0.5, crowd regions left out): (true-positive
    flags, scores, labels, ground-truth count per class), images per class, the confusion
    matrix of the detections scoring at least ``conf``, and each image's matching."""
    k = len(ds.class_names)
    tps, scores, labels = [], [], []
    num_gt = np.zeros(k + 1, np.int64)
    images_with = np.zeros(k + 1, np.int64)
    confusion = np.zeros((k + 1, k + 1), np.int64)
    matches: dict[int, ImageMatch] = {}
    for rec in ds.images:
        regular = ~(rec.iscrowd | rec.ignore)
        np.add.at(num_gt, rec.labels[regular], 1)
        images_with[np.unique(rec.labels[regular])] += 1
        boxes, sc, lab = detection_arrays(by_id.get(int(rec.image_id)))
        m = matches[int(rec.image_id)] = match_image(
            boxes, sc, lab, rec.boxes, rec.labels, ~regular, max_dets
        )
        boxes, sc, lab = boxes[m.order], sc[m.order], lab[m.order]
        keep = ~m.ignored
        tps.append(m.tp[keep])
        scores.append(sc[keep])
        labels.append(lab[keep])
        sure = (sc >= conf) & keep
        paired = m.among_regular(~regular)[sure]
        confusion += confusion_matrix(
            boxes[sure],
            sc[sure],
            lab[sure],
            rec.boxes[regular],
            rec.labels[regular],
            k,
            matched=paired,
        )
    matched = (np.concatenate(tps), np.concatenate(scores), np.concatenate(labels), num_gt)
    return matched, images_with, confusion, matches


def _per_class_rows(
    ds: DetectionDataset,
    coco: CocoEvaluation,
    at_conf: dict,
    images_with: np.ndarray,
    num_gt: np.ndarray,
) -> list[dict]:
    """The per-class table: counts, P/R/F1 at ``conf``, COCO AP50 and AP."""
    ap50, ap = coco.per_class_ap()
    ap_by_label = {cid: (a50, a) for cid, a50, a in zip(coco.category_ids, ap50, ap, strict=True)}
    per_class = []
    for c in range(1, len(ds.class_names) + 1):
        a50, a = ap_by_label.get(c, (np.nan, np.nan))
        per_class.append(
            {
                "class": ds.class_names[c - 1],
                "images": int(images_with[c]),
                "instances": int(num_gt[c]),
                "precision": round(float(at_conf["precision"][c - 1, 0]), 6),
                "recall": round(float(at_conf["recall"][c - 1, 0]), 6),
                "F1": round(float(at_conf["f1"][c - 1, 0]), 6),
                "mAP50": round(float(np.nan_to_num(a50)), 6),
                "mAP50-95": round(float(np.nan_to_num(a)), 6),
            }
        )
    return per_class


def _class_mean(values: np.ndarray, key: str) -> float:
    """The mean over classes of a number where it is defined; an undefined precision when it
    is nowhere defined (no detections), else 0."""
    if not len(values) or np.isnan(values).all():
        return math.nan if key == "precision" else 0.0
    return float(np.nanmean(values))


def _sizes(
    ds: DetectionDataset, coco: CocoEvaluation, results: list[dict], max_dets: int, size_bins
) -> SizeTable:
    """AP/AR per size and class: COCO's bins from the main evaluation, others from a second."""
    edges, names = parse_sizes(size_bins)
    if size_bins is None:
        return size_table(coco.precision, coco.recall, coco.category_ids, ds, edges, names)
    ranges = [(a * a, min(b * b, 1e10)) for a, b in zip(edges, edges[1:], strict=False)]
    own = CocoEvaluation(coco_ground_truth(ds), results, max_dets, ranges)
    return size_table(own.precision, own.recall, own.category_ids, ds, edges, names)


def _diagnosis(
    ds: DetectionDataset,
    by_id: dict[int, dict],
    matched: tuple,
    coco: CocoEvaluation,
    results: list[dict],
    max_dets: int,
    size_bins: Sequence[float] | None,
) -> dict:
    """What tells a person what to fix: the error breakdown, the scores' calibration and
    the per-size table (and the data they came from)."""
    (tp, scores, labels, _), matches = matched
    return {
        "errors": error_breakdown(ds, by_id, max_dets, matches),
        "calibration": reliability(scores, tp, labels, ds.class_names),
        "sizes": _sizes(ds, coco, results, max_dets, size_bins),
        "predictions": by_id,
        "detections": {"scores": scores, "labels": labels, "correct": tp},
    }


def _by_image(ds: DetectionDataset, predictions: Sequence[dict]) -> dict[int, dict]:
    """Predictions as NumPy ``boxes``, ``scores``, ``labels`` by image id.

    Raises:
        ValueError: an image id the ground truth does not have.
    """
    by_id = {
        int(p["image_id"]): dict(
            zip(("boxes", "scores", "labels"), detection_arrays(p), strict=True)
        )
        for p in predictions
    }
    unknown = set(by_id) - {int(r.image_id) for r in ds.images}
    if unknown:
        raise InputError(
            f"predictions for image ids not in the ground truth: {sorted(unknown)[:10]}"
        )
    return by_id


def evaluate_detections(
    ds: DetectionDataset,
    predictions: Sequence[dict],
    conf: float = CONF,
    score_weights: tuple[float, float] = (0.5, 0.5),
    max_dets: int = 100,
    size_bins: Sequence[float] | None = None,
) -> EvalResult:
    """Score detections against a dataset's ground truth: COCO numbers, P/R/F1 at ``conf``,
    per-class and per-size tables, the error breakdown and the scores' calibration.

    Args:
        ds: checked ground truth; ``image_id`` links predictions to records.
        predictions: per image ``image_id``, ``boxes`` [N, 4] xyxy, ``scores``, ``labels``
            (numpy or tensors), in original image coordinates. Images without an entry have
            no detections.
        conf: score threshold for precision/recall/F1 and the confusion matrix.
        score_weights: weights of mAP50 and F1-at-conf in ``score``.
        max_dets: the most detections per image the COCO numbers count (``maxDets``).
        size_bins: edges of the size bins as box sides in pixels (COCO's 0 32 96 inf when
            None).
    """
    by_id = _by_image(ds, predictions)
    results = coco_results([{"image_id": i, **p} for i, p in by_id.items()])
    coco = CocoEvaluation(coco_ground_truth(ds), results, max_dets)
    matched, images_with, confusion, matches = _match_all(ds, by_id, conf, max_dets)
    num_gt = matched[3]
    curves = pr_curves(*matched)
    at_conf = pr_curves(*matched, thresholds=[conf])
    present = num_gt[1:] > 0
    best = int(np.argmax(curves["f1"][present].mean(0))) if present.any() else 0

    def mean_at(key: str, i: int, source: dict) -> float:
        return _class_mean(source[key][present, i], key)

    f1_at_conf = mean_at("f1", 0, at_conf)
    coco_stats = {key: coco.stats[key] for key in COCO_KEYS}
    return EvalResult(
        coco=coco_stats,
        coco_summary=coco.summary,
        class_names=list(ds.class_names),
        conf=conf,
        best_threshold=float(curves["threshold"][best]),
        precision=mean_at("precision", 0, at_conf),
        recall=mean_at("recall", 0, at_conf),
        f1=f1_at_conf,
        precision_best=mean_at("precision", best, curves),
        recall_best=mean_at("recall", best, curves),
        f1_best=mean_at("f1", best, curves),
        score=score_weights[0] * coco_stats["AP50"] + score_weights[1] * f1_at_conf,
        per_class=_per_class_rows(ds, coco, at_conf, images_with, num_gt),
        curves=curves,
        coco_precision=coco.precision,
        confusion=confusion,
        num_images=len(ds.images),
        **_diagnosis(ds, by_id, (matched, matches), coco, results, max_dets, size_bins),
    )
