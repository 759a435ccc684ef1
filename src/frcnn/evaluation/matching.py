"""Matching detections to ground truth, once: true positives, AP, PR/F1 curves, confusion
matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes.overlap import box_ioa, box_iou
from ..data.records import ImageRecord


def detection_arrays(pred: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's ``boxes`` [N, 4], ``scores`` [N], ``labels`` [N] as NumPy (float64,
    float64, int64), from arrays or tensors; empty for an image without predictions."""
    if pred is None:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    return (
        np.asarray(pred["boxes"], np.float64).reshape(-1, 4),
        np.asarray(pred["scores"], np.float64).reshape(-1),
        np.asarray(pred["labels"], np.int64).reshape(-1),
    )


def greedy_by_score(iou: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """For detections sorted by score (rows) and objects (columns): the object each detection
    takes, in order, the unused one of highest IoU if that IoU >= ``threshold``; -1 for none.
    As COCOeval and TIDE match, so a detection's fate never depends on lower-scoring ones.
    Only detections with a candidate are visited, since each choice removes an object from
    the later ones."""
    match = np.full(iou.shape[0], -1, np.int64)
    if iou.shape[1] == 0:
        return match
    free = np.ones(iou.shape[1], bool)
    for row in np.flatnonzero((iou >= threshold).any(1)):
        candidates = np.where(free, iou[row], 0.0)
        best = int(candidates.argmax())
        if candidates[best] >= threshold:
            match[row], free[best] = best, False
    return match


def _pairs_by_score(
    iou: np.ndarray, scores: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """``greedy_by_score`` on unsorted detections: the matched (detection, object) pairs."""
    order = np.argsort(-scores, kind="stable")
    match = greedy_by_score(iou[order], threshold)
    found = match >= 0
    return order[found], match[found]


# The one matching every count reads (P/R/F1, the per-class table, the confusion matrix,
# calibration, the worst images and the error breakdown): a detection matches a same-class
# object at IoU >= POS_IOU; an unmatched one inside a same-class crowd or ignore region
# (intersection over the detection's area >= POS_IOU, as COCO) is left out of every count.
POS_IOU = 0.5


@dataclass
class ImageMatch:
    """One image's detections matched to its objects (see :func:`match_image`).

    Attributes:
        order: [P] indices into the image's detections of those counted: by score, best
            first, at most ``max_dets``; the other arrays follow this order.
        matched: [P] the object (index into the image's ground-truth boxes) each detection
            matched, -1 for none.
        ignored: [P] unmatched and inside a same-class crowd/ignore region: in no count.
    """

    order: np.ndarray
    matched: np.ndarray
    ignored: np.ndarray

    @property
    def tp(self) -> np.ndarray:
        """[P] true-positive flags."""
        return self.matched >= 0

    def among_regular(self, gt_ignore: np.ndarray) -> np.ndarray:
        """[P] ``matched`` as an index among the image's regular (not crowd/ignore) objects."""
        if not len(gt_ignore):
            return np.full(len(self.matched), -1, np.int64)
        position = np.cumsum(~np.asarray(gt_ignore, bool)) - 1
        return np.where(self.matched >= 0, position[np.maximum(self.matched, 0)], -1)

    def first(self, n: int) -> ImageMatch:
        """The matching of the ``n`` best detections alone: the same, since each detection
        takes its object before any lower-scoring one is looked at."""
        return ImageMatch(self.order[:n], self.matched[:n], self.ignored[:n])


def match_image(
    pred_boxes: np.ndarray,
    pred_scores: np.ndarray,
    pred_labels: np.ndarray,
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    gt_ignore: np.ndarray,
    max_dets: int | None = None,
    threshold: float = POS_IOU,
) -> ImageMatch:
    """The one matching of an image's detections (xyxy, the image's pixels) to its objects:
    detections in score order, cut to ``max_dets``, each taking the unused same-class
    regular object of highest IoU if that IoU is at least ``threshold``; an unmatched
    detection whose intersection with a same-class crowd/ignore box (``gt_ignore``) covers
    at least ``threshold`` of its area is ignored. As COCOeval and TIDE match."""
    order = np.argsort(-np.asarray(pred_scores, np.float64), kind="stable")[:max_dets]
    boxes = np.asarray(pred_boxes, np.float64).reshape(-1, 4)[order]
    labels = np.asarray(pred_labels, np.int64)[order]
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    regular, crowd = np.flatnonzero(~gt_ignore), np.flatnonzero(gt_ignore)
    matched = np.full(len(order), -1, np.int64)
    ignored = np.zeros(len(order), bool)
    if len(order) and len(regular):
        same = labels[:, None] == gt_labels[regular][None, :]
        taken = greedy_by_score(box_iou(boxes, gt_boxes[regular]) * same, threshold)
        matched = np.where(taken >= 0, regular[np.maximum(taken, 0)], -1)
    if len(order) and len(crowd):
        same = labels[:, None] == gt_labels[crowd][None, :]
        inside = (box_ioa(boxes, gt_boxes[crowd]) * same >= threshold).any(1)
        ignored = (matched < 0) & inside
    return ImageMatch(order, matched, ignored)


def match_record(pred: dict | None, rec: ImageRecord, max_dets: int | None = None) -> ImageMatch:
    """:func:`match_image` of a prediction (``boxes``, ``scores``, ``labels``) to a record."""
    boxes, scores, labels = detection_arrays(pred)
    return match_image(
        boxes, scores, labels, rec.boxes, rec.labels, rec.iscrowd | rec.ignore, max_dets
    )


# COCOeval's recall thresholds (np.linspace: 0.29 is 0.29000000000000004 there, which
# decides which precision a recall of exactly 0.29 reads).
COCO_RECALLS = np.linspace(0.0, 1.0, 101)


def average_precision(
    tp: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    num_gt: np.ndarray,
    recalls: np.ndarray = COCO_RECALLS,
) -> np.ndarray:
    """AP [K + 1] per label at the matching's IoU, COCO's 101-point way: detections of a
    class by score across images, precision made monotone, read at ``recalls`` (COCO's
    0, 0.01, ..., 1). NaN for a class without ground truth (index 0 unused).

    Args:
        tp, scores, labels: [N] every counted detection (ignored ones left out).
        num_gt: [K + 1] regular objects per label.
    """
    k1 = len(num_gt)
    aps = np.full(k1, np.nan)
    order = np.lexsort((-scores, labels))  # by class, then score descending; stable
    counts = np.bincount(labels, minlength=k1)[:k1]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    for c in np.flatnonzero(num_gt > 0):  # once per class
        t = tp[order[bounds[c] : bounds[c + 1]]]
        if len(t) == 0:
            aps[c] = 0.0
            continue
        hits = np.cumsum(t)
        precision = np.maximum.accumulate((hits / np.arange(1, len(t) + 1))[::-1])[::-1]
        at = np.searchsorted(hits / num_gt[c], recalls, side="left")
        aps[c] = np.where(at < len(t), precision[np.minimum(at, len(t) - 1)], 0.0).mean()
    return aps


def pr_curves(
    tp: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    num_gt: np.ndarray,
    thresholds: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Precision, recall and F1 against the score threshold, per class, at IoU 0.5: exact
    step functions (detections scoring >= the threshold count). Precision is undefined (NaN)
    where no detection passes the threshold, recall where the class has no ground truth;
    F1 counts an undefined precision as 0.

    Args:
        tp: [N] true-positive flags at IoU 0.5 of all detections.
        scores, labels: [N] of the detections (labels 1..K).
        num_gt: [K + 1] ground-truth instances per label (index 0 unused).

        thresholds: the score thresholds [G] (default 1000 points from 0 to 1).

    Returns:
        ``threshold`` [G] and ``precision``, ``recall``, ``f1`` [K, G].
    """
    x = np.linspace(0, 1, 1000) if thresholds is None else np.asarray(thresholds, np.float64)
    grid = len(x)
    k = len(num_gt) - 1
    precision = np.full((k, grid), np.nan)
    recall = np.where(num_gt[1:, None] > 0, 0.0, np.nan) * np.ones((k, grid))
    order = np.argsort(-scores, kind="stable")
    tp, scores, labels = tp[order], scores[order], labels[order]
    for c in range(1, k + 1):  # a handful of classes, once per evaluation
        mine = labels == c
        if not mine.any():
            continue
        tpc = np.concatenate([[0], np.cumsum(tp[mine])])
        # Detections kept at threshold x: those scoring >= x (scores are sorted descending).
        kept = np.searchsorted(-scores[mine], -x, side="right")
        if num_gt[c] > 0:
            recall[c - 1] = tpc[kept] / num_gt[c]
        precision[c - 1] = np.where(kept > 0, tpc[kept] / np.maximum(kept, 1), np.nan)
    p, r = np.nan_to_num(precision), np.nan_to_num(recall)
    f1 = 2 * p * r / np.maximum(p + r, 1e-16)
    return {"threshold": x, "precision": precision, "recall": recall, "f1": f1}


def confusion_matrix(
    pred_boxes: np.ndarray,
    pred_scores: np.ndarray,
    pred_labels: np.ndarray,
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    num_classes: int,
    iou_threshold: float = POS_IOU,
    matched: np.ndarray | None = None,
) -> np.ndarray:
    """Counts [K + 1, K + 1] for one image: rows predicted class, columns true class, the last
    row/column background (1-based labels map to index label - 1).

    Detections are first matched within their class exactly as precision and recall match
    them, in score order (the diagonal holds their true positives); the rest are then
    matched to the remaining objects whatever the class (confusions); what is left is a false alarm
    (background column) or a missed object (background row). So a class's diagonal over
    its row total is its precision, over its column total its recall. ``matched`` [N] (the
    object index per detection, -1 for none) gives the same-class pairs of the one matching
    (:func:`match_image`) instead of matching again."""
    m = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    bg = num_classes
    if len(pred_boxes) and len(gt_boxes):
        iou = box_iou(pred_boxes, gt_boxes)
        scores = np.asarray(pred_scores, np.float64)
        same = pred_labels[:, None] == gt_labels[None, :]
        if matched is None:
            same_p, same_g = _pairs_by_score(iou * same, scores, iou_threshold)
        else:
            same_p = np.flatnonzero(matched >= 0)
            same_g = matched[same_p]
        rest = iou.copy()
        rest[same_p, :], rest[:, same_g] = 0, 0
        other_p, other_g = _pairs_by_score(rest, scores, iou_threshold)
        pairs_p, pairs_g = np.concatenate([same_p, other_p]), np.concatenate([same_g, other_g])
    else:
        pairs_p = pairs_g = np.zeros(0, np.int64)
    np.add.at(m, (pred_labels[pairs_p] - 1, gt_labels[pairs_g] - 1), 1)
    missed = np.setdiff1d(np.arange(len(gt_boxes)), pairs_g)
    np.add.at(m, (np.full(len(missed), bg), gt_labels[missed] - 1), 1)
    extra = np.setdiff1d(np.arange(len(pred_boxes)), pairs_p)
    np.add.at(m, (pred_labels[extra] - 1, np.full(len(extra), bg)), 1)
    return m
