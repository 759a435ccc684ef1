"""Everything an evaluation reports: COCO numbers, P/R/F1, per-class table, curves, confusion."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.records import DetectionDataset
from ..defaults import CONF
from ..io.atomic import atomic_write_text
from .coco import COCO_KEYS, CocoEvaluation, coco_ground_truth, coco_results
from .matching import confusion_matrix, match_image, pr_curves


@dataclass
class EvalResult:
    """Results of :func:`evaluate_detections`.

    ``precision``/``recall``/``f1`` are means over the classes with ground truth at IoU 0.5:
    ``*_at_conf`` at the configured score threshold, the plain ones at the threshold that
    maximises mean F1 (``best_threshold``). ``score`` = weighted mAP50 and F1 at ``conf``.
    """

    coco: dict[str, float]
    coco_summary: str
    class_names: list[str]
    conf: float
    best_threshold: float
    precision: float
    recall: float
    f1: float
    precision_at_conf: float
    recall_at_conf: float
    f1_at_conf: float
    score: float
    per_class: list[dict[str, object]]
    curves: dict[str, np.ndarray] = field(repr=False)
    coco_precision: np.ndarray = field(repr=False)
    confusion: np.ndarray = field(repr=False)

    @property
    def map50(self) -> float:
        return self.coco["AP50"]

    @property
    def measurable(self) -> bool:
        """False when the ground truth holds no boxes: COCO then reports -1 and the score
        means nothing."""
        return self.coco["AP50"] >= 0

    def to_json(self) -> dict:
        return {
            **{k: round(v, 6) for k, v in self.coco.items()},
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "F1": round(self.f1, 6),
            "best_threshold": round(self.best_threshold, 4),
            "conf": self.conf,
            "precision_at_conf": round(self.precision_at_conf, 6),
            "recall_at_conf": round(self.recall_at_conf, 6),
            "F1_at_conf": round(self.f1_at_conf, 6),
            "score": round(self.score, 6),
            "per_class": self.per_class,
        }

    def table(self) -> str:
        """The per-class table, as printed by ``frcnn eval``."""
        head = f"{'class':<20}{'images':>8}{'instances':>10}{'P':>8}{'R':>8}{'mAP50':>8}{'mAP50-95':>10}"
        rows = [head]
        for r in self.per_class:
            rows.append(
                f"{str(r['class'])[:19]:<20}{r['images']:>8}{r['instances']:>10}{r['precision']:>8.3f}"
                f"{r['recall']:>8.3f}{r['mAP50']:>8.3f}{r['mAP50-95']:>10.3f}"
            )
        return "\n".join(rows)

    def write(self, out: str | Path) -> None:
        """``metrics.json`` and ``per_class.csv`` in ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "metrics.json", json.dumps(self.to_json(), indent=2))
        with (out / "per_class.csv").open("w", newline="") as f:
            writer = csv.DictWriter(
                f, fieldnames=list(self.per_class[0]) if self.per_class else ["class"]
            )
            writer.writeheader()
            writer.writerows(self.per_class)


def _as_numpy(pred: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = np.asarray(pred["boxes"], np.float64).reshape(-1, 4)
    return (
        boxes,
        np.asarray(pred["scores"], np.float64).reshape(-1),
        np.asarray(pred["labels"], np.int64).reshape(-1),
    )


def _match_all(
    ds: DetectionDataset, by_id: dict[int, dict], conf: float
) -> tuple[tuple, np.ndarray, np.ndarray]:
    """Every image's detections matched to its ground truth at IoU 0.5: (true-positive flags,
    scores, labels, ground-truth count per class), images per class, and the confusion matrix
    of the detections scoring at least ``conf``."""
    k = len(ds.class_names)
    tps, scores, labels = [], [], []
    num_gt = np.zeros(k + 1, np.int64)
    images_with = np.zeros(k + 1, np.int64)
    confusion = np.zeros((k + 1, k + 1), np.int64)
    for rec in ds.images:
        regular = ~(rec.iscrowd | rec.ignore)
        np.add.at(num_gt, rec.labels[regular], 1)
        images_with[np.unique(rec.labels[regular])] += 1
        pred = by_id.get(int(rec.image_id))
        if pred is None:
            boxes, sc, lab = np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
        else:
            boxes, sc, lab = _as_numpy(pred)
        tp, ignored = match_image(boxes, lab, rec.boxes, rec.labels, ~regular)
        keep = ~ignored
        tps.append(tp[keep, 0])
        scores.append(sc[keep])
        labels.append(lab[keep])
        sure = sc >= conf
        confusion += confusion_matrix(
            boxes[sure & keep], lab[sure & keep], rec.boxes[regular], rec.labels[regular], k
        )
    matched = (np.concatenate(tps), np.concatenate(scores), np.concatenate(labels), num_gt)
    return matched, images_with, confusion


def _per_class_rows(
    ds: DetectionDataset,
    coco: CocoEvaluation,
    curves: dict,
    best: int,
    images_with: np.ndarray,
    num_gt: np.ndarray,
) -> list[dict]:
    """The per-class table: counts, P/R at the best threshold, COCO AP50 and AP."""
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
                "precision": round(float(curves["precision"][c - 1, best]), 6),
                "recall": round(float(curves["recall"][c - 1, best]), 6),
                "mAP50": round(float(np.nan_to_num(a50)), 6),
                "mAP50-95": round(float(np.nan_to_num(a)), 6),
            }
        )
    return per_class


def evaluate_detections(
    ds: DetectionDataset,
    predictions: Sequence[dict],
    conf: float = CONF,
    score_weights: tuple[float, float] = (0.5, 0.5),
    max_dets: int = 100,
) -> EvalResult:
    """Score detections against a dataset's ground truth.

    Args:
        ds: checked ground truth; ``image_id`` links predictions to records.
        predictions: per image ``image_id``, ``boxes`` [N, 4] xyxy, ``scores``, ``labels``
            (numpy or tensors), in original image coordinates. Images without an entry have
            no detections.
        conf: score threshold for the thresholded precision/recall/F1 and confusion matrix.
        score_weights: weights of mAP50 and F1-at-conf in ``score``.
        max_dets: the most detections per image the COCO numbers count (``maxDets``).
    """
    by_id = {int(p["image_id"]): p for p in predictions}
    unknown = set(by_id) - {int(r.image_id) for r in ds.images}
    if unknown:
        raise ValueError(
            f"predictions for image ids not in the ground truth: {sorted(unknown)[:10]}"
        )
    coco = CocoEvaluation(coco_ground_truth(ds), coco_results(by_id.values()), max_dets)

    matched, images_with, confusion = _match_all(ds, by_id, conf)
    num_gt = matched[3]
    curves = pr_curves(*matched)
    at_conf = pr_curves(*matched, thresholds=[conf])
    present = num_gt[1:] > 0
    mean_f1 = curves["f1"][present].mean(0) if present.any() else np.zeros_like(curves["threshold"])
    best = int(np.argmax(mean_f1))

    def mean_at(key: str, i: int, source: dict = curves) -> float:
        return float(source[key][present, i].mean()) if present.any() else 0.0

    per_class = _per_class_rows(ds, coco, curves, best, images_with, num_gt)
    f1_at_conf = mean_at("f1", 0, at_conf)
    coco_stats = {key: coco.stats[key] for key in COCO_KEYS}
    return EvalResult(
        coco=coco_stats,
        coco_summary=coco.summary,
        class_names=list(ds.class_names),
        conf=conf,
        best_threshold=float(curves["threshold"][best]),
        precision=mean_at("precision", best),
        recall=mean_at("recall", best),
        f1=mean_at("f1", best),
        precision_at_conf=mean_at("precision", 0, at_conf),
        recall_at_conf=mean_at("recall", 0, at_conf),
        f1_at_conf=f1_at_conf,
        score=score_weights[0] * coco_stats["AP50"] + score_weights[1] * f1_at_conf,
        per_class=per_class,
        curves=curves,
        coco_precision=coco.precision,
        confusion=confusion,
    )
