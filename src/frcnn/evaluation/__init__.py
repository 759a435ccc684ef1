"""Detection metrics: COCO numbers (equal to pycocotools), P/R/F1, per-class table, curves."""

from .coco import COCO_KEYS, CocoEvaluation, coco_ground_truth, coco_results
from .report import EvalResult, evaluate_detections

__all__ = [
    "COCO_KEYS",
    "CocoEvaluation",
    "EvalResult",
    "coco_ground_truth",
    "coco_results",
    "evaluate_detections",
]
