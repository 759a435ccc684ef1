"""Matching detections to ground truth: true positives, PR/F1 curves, confusion matrix."""

from __future__ import annotations

import numpy as np

from ..boxes.overlap import box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def _greedy_pairs(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one pairs (row, col) with IoU >= threshold, highest IoU first."""
    rows, cols = np.nonzero(iou >= threshold)
    if len(rows) == 0:
        return rows, cols
    order = np.argsort(-iou[rows, cols], kind="stable")
    rows, cols = rows[order], cols[order]
    _, first = np.unique(cols, return_index=True)
    first = np.sort(first)
    rows, cols = rows[first], cols[first]
    _, first = np.unique(rows, return_index=True)
    first = np.sort(first)
    return rows[first], cols[first]


def match_image(
    pred_boxes: np.ndarray,
    pred_labels: np.ndarray,
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    gt_ignore: np.ndarray,
    thresholds: np.ndarray = IOU_THRESHOLDS,
) -> tuple[np.ndarray, np.ndarray]:
    """True-positive flags [N, T] of one image's detections at each IoU threshold, and the
    mask [N] of detections to leave out because they only match ignored (crowd/difficult)
    regions at IoU 0.5."""
    n = len(pred_boxes)
    tp = np.zeros((n, len(thresholds)), bool)
    if n == 0 or len(gt_boxes) == 0:
        return tp, np.zeros(n, bool)
    iou = box_iou(pred_boxes, gt_boxes) * (pred_labels[:, None] == gt_labels[None, :])
    regular = iou * ~gt_ignore[None, :]
    for t, threshold in enumerate(thresholds):
        rows, _ = _greedy_pairs(regular, threshold)
        tp[rows, t] = True
    ignored = ~tp[:, 0] & ((iou * gt_ignore[None, :]) >= thresholds[0]).any(1)
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
    pred_labels: np.ndarray,
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    num_classes: int,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """Counts [K + 1, K + 1] for one image: rows predicted class, columns true class, the last
    row/column background (1-based labels map to index label - 1). Matching ignores class."""
    m = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    bg = num_classes
    pairs_p, pairs_g = (
        _greedy_pairs(box_iou(pred_boxes, gt_boxes), iou_threshold)
        if len(pred_boxes) and len(gt_boxes)
        else (np.zeros(0, int), np.zeros(0, int))
    )
    np.add.at(m, (pred_labels[pairs_p] - 1, gt_labels[pairs_g] - 1), 1)
    missed = np.setdiff1d(np.arange(len(gt_boxes)), pairs_g)
    np.add.at(m, (np.full(len(missed), bg), gt_labels[missed] - 1), 1)
    extra = np.setdiff1d(np.arange(len(pred_boxes)), pairs_p)
    np.add.at(m, (pred_labels[extra] - 1, np.full(len(extra), bg)), 1)
    return m
