"""Matching detections to ground truth: true positives, PR/F1 curves, confusion matrix."""

from __future__ import annotations

import numpy as np

from ..boxes.overlap import box_ioa, box_iou


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


def match_image(
    pred_boxes: np.ndarray,
    pred_scores: np.ndarray,
    pred_labels: np.ndarray,
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    gt_ignore: np.ndarray,
    threshold: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """True-positive flags [N] of one image's detections at IoU ``threshold`` (matched in
    score order within their class), and the mask [N] of unmatched detections to leave out
    because they lie in a same-class crowd/ignore region (IoA >= ``threshold``, as COCO)."""
    n = len(pred_boxes)
    tp = np.zeros(n, bool)
    if n == 0 or len(gt_boxes) == 0:
        return tp, np.zeros(n, bool)
    same = pred_labels[:, None] == gt_labels[None, :]
    iou = box_iou(pred_boxes, gt_boxes) * same * ~gt_ignore[None, :]
    rows, _ = _pairs_by_score(iou, np.asarray(pred_scores, np.float64), threshold)
    tp[rows] = True
    in_crowd = box_ioa(pred_boxes, gt_boxes) * same * gt_ignore[None, :]
    ignored = ~tp & (in_crowd >= threshold).any(1)
    return tp, ignored


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
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """Counts [K + 1, K + 1] for one image: rows predicted class, columns true class, the last
    row/column background (1-based labels map to index label - 1).

    Detections are first matched within their class exactly as precision and recall match
    them, in score order (the diagonal holds their true positives); the rest are then
    matched to the remaining objects whatever the class (confusions); what is left is a false alarm
    (background column) or a missed object (background row). So a class's diagonal over
    its row total is its precision, over its column total its recall."""
    m = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    bg = num_classes
    if len(pred_boxes) and len(gt_boxes):
        iou = box_iou(pred_boxes, gt_boxes)
        scores = np.asarray(pred_scores, np.float64)
        same = pred_labels[:, None] == gt_labels[None, :]
        same_p, same_g = _pairs_by_score(iou * same, scores, iou_threshold)
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
