"""Likely annotation errors, ranked, from predictions of models that never trained on the
image (out-of-fold predictions of ``frcnn kfold``).

Each ground-truth box and each confident prediction is compared with the other side at
IoU 0.5 (COCO's matching threshold), and at most one issue is raised per box:

- ``missing_label``: a confident detection that no ground-truth box of any class matches
  (IoU < 0.5), that lies outside crowd regions and that is not the evidence of a
  ``bad_box``: an object nobody labelled. Rank: trust x (1 - its best IoU).
- ``swapped_label``: a ground-truth box that a confident detection of another class covers
  (IoU >= 0.5) while no detection of its own class does as well. Rank: that detection's
  score minus the best own-class score on the box, x trust.
- ``bad_box``: a ground-truth box whose best own-class confident detection overlaps it
  only partly (``background_iou`` <= IoU < 0.5): the box is drawn off the object. Rank:
  trust x (1 - IoU).
- ``spurious_label``: a ground-truth box no detection of any class covers (IoU >= 0.5) at
  any score: a label where there is nothing, or a missed object. Rank: (1 - the highest
  score of any detection overlapping it at IoU >= ``background_iou``) x found.

A model's word is only worth what its record says, so ranks are calibrated on the same
predictions (:class:`Reliability`): "trust" is the precision of the detection's class at its
score (how often such confident detections do match a label), "found" the share of labelled
boxes of that class and size the models find. A box missed where the models find 99% of its
kind is suspicious; one missed among small objects they find half of is not. Every rank is
in [0, 1]; the list is sorted by it, most likely first.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..boxes.overlap import box_ioa, box_iou
from ..data.images import to_pil
from ..data.loader import readable_images
from ..data.records import DetectionDataset, ImageRecord, label_name
from ..evaluation.matching import detection_arrays
from ..io.atomic import atomic_write_csv, atomic_write_text

log = logging.getLogger("frcnn")

KINDS = ("missing_label", "swapped_label", "bad_box", "spurious_label")
# Below this mAP50 of the predictions on the data, the models miss or misplace most objects:
# most "issues" are then the models' errors, not the labels'.
WEAK_AP50 = 0.3


def weak_models_note(ap50: float | None) -> str | None:
    """What to say when predictions scoring ``ap50`` are too weak to judge labels by."""
    if ap50 is None or ap50 >= WEAK_AP50:
        return None
    return (
        f"the predictions score mAP50 {ap50:.3f} on this data (under {WEAK_AP50}): models "
        "this weak miss or misplace most objects, so most of these issues are the models' "
        "errors, not the labels'; train longer or on more data before acting on the list"
    )


MATCH_IOU = 0.5
NO_BOX = (np.nan,) * 4
SCORE_BINS = 5  # equal-width bins of confident scores, [conf, 1]
SIZE_EDGES = (16.0, 32.0, 64.0, 128.0)  # box side sqrt(w * h) in pixels: five size bins
SHRINK = 5.0  # pseudo-counts pulling a sparse bin toward every class's rate in that bin


@dataclass
class Reliability:
    """The models' record on the predictions themselves: ``precision[label, score bin]``, the
    share of confident detections that match a label of their class (IoU >= 0.5), and
    ``found[label, size bin]``, the share of labelled boxes such a detection matches. Sparse
    bins are shrunk toward all classes' rate. ``precision`` None: uncalibrated (a
    detection's trust is its score, every box is found at rate 1)."""

    conf: float
    precision: np.ndarray | None = None
    found: np.ndarray | None = None

    def trust(self, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.precision is None:
            return np.asarray(scores, np.float64)
        return self.precision[labels, _score_bin(scores, self.conf)]

    def found_rate(self, labels: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        if self.found is None:
            return np.ones(len(labels))
        return self.found[labels, _size_bin(boxes)]


def _score_bin(scores: np.ndarray, conf: float) -> np.ndarray:
    position = (np.asarray(scores, np.float64) - conf) / max(1 - conf, 1e-9)
    return np.clip((position * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)


def _size_bin(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    side = np.sqrt(np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None))
    return np.digitize(side, SIZE_EDGES)


def _rates(labels: list, bins: list, hits: list, shape: tuple[int, int]) -> np.ndarray:
    """Hit rate per (label, bin), shrunk toward the rate of all labels in the bin."""
    n, h = np.zeros(shape), np.zeros(shape)
    index = (np.concatenate(labels).astype(np.int64), np.concatenate(bins))
    np.add.at(n, index, 1.0)
    np.add.at(h, index, np.concatenate(hits).astype(np.float64))
    overall = (h.sum(0) + 1) / (n.sum(0) + 2)
    return (h + SHRINK * overall) / (n + SHRINK)


def measure_reliability(ds: DetectionDataset, by_id: dict[int, dict], conf: float) -> Reliability:
    """:class:`Reliability` of the predictions ``by_id`` (image id -> prediction) on ``ds``."""
    det = ([np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, bool)])
    gt = ([np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, bool)])
    for rec in ds.images:
        pb, ps, pl = detection_arrays(by_id.get(int(rec.image_id)))
        sure = ps >= conf
        pb, ps, pl = pb[sure], ps[sure], pl[sure]
        keep = ~(rec.iscrowd | rec.ignore)
        gb, gl = rec.boxes[keep].astype(np.float64), rec.labels[keep]
        crowd = rec.boxes[~keep].astype(np.float64)
        iou = box_iou(gb, pb) if len(gb) and len(pb) else np.zeros((len(gb), len(pb)))
        match = (iou >= MATCH_IOU) & (gl[:, None] == pl[None, :])
        counted = (
            box_ioa(pb, crowd).max(1) < 0.5 if len(crowd) and len(pb) else np.ones(len(pb), bool)
        )
        for part, values in zip(
            det, (pl[counted], _score_bin(ps[counted], conf), match.any(0)[counted]), strict=True
        ):
            part.append(values)
        for part, values in zip(gt, (gl, _size_bin(gb), match.any(1)), strict=True):
            part.append(values)
    k = ds.num_classes
    return Reliability(conf, _rates(*det, (k, SCORE_BINS)), _rates(*gt, (k, len(SIZE_EDGES) + 1)))


@dataclass
class LabelIssue:
    """One likely annotation error. ``gt_box``/``pred_box`` are x1y1x2y2 pixels (NaN when
    the issue has none); ``ann_id`` is where the ground-truth box came from (see
    :attr:`ImageRecord.ann_ids`), -1 for a missing label."""

    rank: float
    kind: str
    file_name: str
    image_id: int
    ann_id: int
    gt_label: int
    pred_label: int
    score: float
    iou: float
    gt_box: tuple[float, float, float, float]
    pred_box: tuple[float, float, float, float]


def find_label_issues(
    ds: DetectionDataset,
    predictions: Sequence[dict],
    conf: float = 0.5,
    background_iou: float = 0.1,
    calibrate: bool = True,
) -> list[LabelIssue]:
    """Ranked likely annotation errors of ``ds`` given predictions per image (``image_id``,
    ``boxes`` [N, 4] xyxy, ``scores``, ``labels``, as :func:`predict_batches` gives and
    ``read_coco_results`` reads); ``conf`` is the score a detection needs to count as
    confident. Crowd and ignored boxes are never reported and absorb detections. Ranks are
    calibrated by :func:`measure_reliability` unless ``calibrate`` is False (then a
    detection's trust is its score and every box counts as found at rate 1)."""
    by_id = {int(p["image_id"]): p for p in predictions}
    rel = measure_reliability(ds, by_id, conf) if calibrate else Reliability(conf)
    issues: list[LabelIssue] = []
    for rec in ds.images:
        issues += _image_issues(
            rec, detection_arrays(by_id.get(int(rec.image_id))), rel, background_iou
        )
    issues.sort(key=lambda i: -i.rank)
    return issues


def _image_issues(
    rec: ImageRecord, pred: tuple, rel: Reliability, bg_iou: float
) -> list[LabelIssue]:
    """The issues of one image (vectorised over its boxes)."""
    pb, ps, pl = pred
    conf = rel.conf
    keep = ~(rec.iscrowd | rec.ignore)
    gb, gl, ids = rec.boxes[keep].astype(np.float64), rec.labels[keep], rec.ann_ids[keep]
    iou = box_iou(gb, pb) if len(gb) and len(pb) else np.zeros((len(gb), len(pb)))

    def issue(kind: str, rank: np.ndarray, g: np.ndarray, p: np.ndarray) -> list[LabelIssue]:
        return [
            LabelIssue(
                round(float(r), 6),
                kind,
                rec.file_name,
                int(rec.image_id),
                int(ids[gi]) if gi >= 0 else -1,
                int(gl[gi]) if gi >= 0 else 0,
                int(pl[pi]) if pi >= 0 else 0,
                float(ps[pi]) if pi >= 0 else 0.0,
                float(iou[gi, pi]) if gi >= 0 and pi >= 0 else 0.0,
                tuple(gb[gi].tolist()) if gi >= 0 else NO_BOX,
                tuple(pb[pi].tolist()) if pi >= 0 else NO_BOX,
            )
            for r, gi, pi in zip(rank.tolist(), g.tolist(), p.tolist(), strict=True)
        ]

    found = _ground_truth_issues(iou, gl[:, None] == pl[None, :], ps, conf, bg_iou)
    for kind, (rank, g, p) in found.items():  # calibrated by the models' record
        weight = (
            rel.found_rate(gl[g], gb[g]) if kind == "spurious_label" else rel.trust(pl[p], ps[p])
        )
        found[kind] = (rank * weight, g, p)
    out = [x for kind, (rank, g, p) in found.items() for x in issue(kind, rank, g, p)]
    used = np.zeros(len(pb), bool)
    used[found["bad_box"][2]] = True  # the detection that shows where the box belongs
    crowd = rec.boxes[~keep].astype(np.float64)
    in_crowd = box_ioa(pb, crowd).max(1) if len(crowd) and len(pb) else np.zeros(len(pb))
    best = iou.max(0, initial=0.0) if len(pb) else np.zeros(0)
    lonely = np.flatnonzero((ps >= conf) & ~used & (best < MATCH_IOU) & (in_crowd < 0.5))
    rank = rel.trust(pl[lonely], ps[lonely]) * (1 - best[lonely])
    return out + issue("missing_label", rank, np.full(len(lonely), -1), lonely)


def _ground_truth_issues(
    iou: np.ndarray, same: np.ndarray, ps: np.ndarray, conf: float, bg_iou: float
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per kind ``(evidence, ground-truth index, detection index or -1)`` of the
    ground-truth boxes' issues: swapped (score margin), badly drawn (1 - IoU), spurious
    (1 - nearest score), before calibration; ``iou`` is (G, D), ``same`` whether the classes
    agree."""
    g = len(iou)
    if not g:
        empty = np.zeros(0, np.int64)
        return {
            k: (np.zeros(0), empty, empty) for k in ("swapped_label", "bad_box", "spurious_label")
        }
    covered, confident = iou >= MATCH_IOU, ps[None, :] >= conf
    own = np.where(covered & same, ps[None, :], 0.0).max(1, initial=0.0)
    handled = (covered & same & confident).any(1)
    other = np.where(covered & ~same & confident, ps[None, :], -1.0)
    other_best = other.argmax(1) if iou.shape[1] else np.zeros(g, np.int64)
    swapped = np.flatnonzero(~handled & (other.max(1, initial=-1.0) > own))
    handled[swapped] = True
    partial = (iou >= bg_iou) & (iou < MATCH_IOU) & same & confident
    shifted = np.where(partial, ps[None, :] * (1 - iou), -1.0)
    shifted_best = shifted.argmax(1) if iou.shape[1] else np.zeros(g, np.int64)
    bad = np.flatnonzero(~handled & (shifted.max(1, initial=-1.0) > 0))
    handled[bad] = True
    near = np.where(iou >= bg_iou, ps[None, :], 0.0).max(1, initial=0.0)
    empty = np.flatnonzero(~handled & ~covered.any(1))
    return {
        "swapped_label": (
            other.max(1, initial=-1.0)[swapped] - own[swapped],
            swapped,
            other_best[swapped],
        ),
        "bad_box": (1 - iou[bad, shifted_best[bad]], bad, shifted_best[bad]),
        "spurious_label": (1.0 - near[empty], empty, np.full(len(empty), -1)),
    }


FIELDS = [
    "rank",
    "kind",
    "file_name",
    "image_id",
    "ann_id",
    "gt_class",
    "pred_class",
    "score",
    "iou",
    "gt_box",
    "pred_box",
]


def write_label_issues(
    issues: Sequence[LabelIssue],
    ds: DetectionDataset,
    predictions: Sequence[dict],
    out: str | Path,
    gallery: int = 24,
    conf: float = 0.5,
    ap50: float | None = None,
) -> Path:
    """``out/label_issues.csv`` (every issue, most likely first, class names spelled out),
    ``out/gallery.jpg`` (the top ``gallery`` issues: ground truth beside the confident
    predictions, the issue in the caption) and ``out/summary.json`` (the counts, the
    predictions' ``ap50`` and, when it is too low to judge labels by, a warning, also
    logged). Returns the CSV's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = ds.class_names
    rows = []
    for i in issues:
        row = asdict(i)
        row["gt_class"] = label_name(names, i.gt_label) if i.gt_label else ""
        row["pred_class"] = label_name(names, i.pred_label) if i.pred_label else ""
        for key in ("gt_box", "pred_box"):
            box = row[key]
            row[key] = "" if np.isnan(box[0]) else " ".join(f"{v:.1f}" for v in box)
        row["score"], row["iou"] = round(i.score, 4), round(i.iou, 4)
        rows.append({k: row[k] for k in FIELDS})
    path = atomic_write_csv(out / "label_issues.csv", FIELDS, rows)
    counts = Counter(i.kind for i in issues)
    log.info(
        "%d likely label issues (%s): %s",
        len(issues),
        ", ".join(f"{counts[k]} {k}" for k in KINDS),
        path,
    )
    note = weak_models_note(ap50)
    if note:
        log.warning("warning: %s", note)
    summary = {
        "issues": len(issues),
        "by_kind": {k: counts[k] for k in KINDS},
        "conf": conf,
        "predictions_AP50": ap50,
        "models_too_weak": note is not None,
        "warning": note,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    if issues and gallery > 0:
        _gallery(issues[:gallery], ds, predictions, out / "gallery.jpg", conf)
    return path


def _gallery(
    issues: Sequence[LabelIssue],
    ds: DetectionDataset,
    predictions: Sequence[dict],
    out: Path,
    conf: float,
) -> None:
    from ..evaluation.plots import prediction_grid

    records = {int(r.image_id): r for r in ds.images}
    by_id = {int(p["image_id"]): p for p in predictions}
    images, truths, preds, captions = [], [], [], []
    readable = readable_images([records[i.image_id] for i in issues], out.name)
    for index, image in readable:
        n, issue = index + 1, issues[index]
        rec = records[issue.image_id]
        pred = by_id.get(issue.image_id, {"boxes": [], "scores": [], "labels": []})
        sure = np.asarray(pred["scores"], np.float64) >= conf
        images.append(to_pil(image))
        truths.append((rec.boxes, rec.labels))
        preds.append({k: np.asarray(pred[k])[sure] for k in ("boxes", "scores", "labels")})
        captions.append(f"#{n} {issue.kind} ({issue.rank:.2f}) {Path(issue.file_name).name}")
    if images:
        prediction_grid(images, truths, preds, ds.class_names, out, captions=captions, conf=conf)
