"""Are the scores probabilities? Reliability of detection scores at IoU 0.5, the expected
calibration error, and score maps (temperature, isotonic) fitted to make them so.

A detection is counted correct when it is a true positive at IoU 0.5 (matched as for AP).
Scores are binned in equal-width bins; a bin's precision is its share of correct
detections, and the expected calibration error (ECE) is the mean gap between a bin's mean
score and its precision, weighted by the bin's share of the detections (the detection ECE
of Kueppers et al., CVPR 2020 workshops, over every detection the model returned).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..defaults import CALIBRATION_METHODS
from ..errors import InputError
from .numbers import json_number, json_row

# Clip scores away from 0 and 1 before taking logits.
_EDGE = 1e-7
# Share of the raw score blended into an isotonic map so that it is strictly increasing:
# the ranking, and so the AP, are kept.
_ISOTONIC_TIE_BREAK = 1e-6


@dataclass
class Reliability:
    """Reliability of detection scores.

    Attributes:
        edges: [B + 1] bin edges in score.
        count: [B] detections per bin.
        score: [B] mean score per bin (NaN when empty).
        precision: [B] share of true positives at IoU 0.5 per bin (NaN when empty).
        ece: expected calibration error over all detections (NaN without detections).
        per_class: per class ``class``, ``detections``, ``ECE``.
    """

    edges: np.ndarray
    count: np.ndarray
    score: np.ndarray
    precision: np.ndarray
    ece: float
    per_class: list[dict[str, object]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "ECE": json_number(self.ece),
            "bins": [
                {
                    "from": json_number(a),
                    "to": json_number(b),
                    "count": int(n),
                    "score": json_number(s),
                    "precision": json_number(p),
                }
                for a, b, n, s, p in zip(
                    self.edges[:-1],
                    self.edges[1:],
                    self.count,
                    self.score,
                    self.precision,
                    strict=True,
                )
            ],
            "per_class": [json_row(r) for r in self.per_class],
        }


def _bins(scores: np.ndarray, correct: np.ndarray, bins: int) -> tuple[np.ndarray, ...]:
    """Counts, mean scores, precisions [B] and the ECE of one set of detections."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(which, scores, minlength=bins) / count
        precision = np.bincount(which, correct.astype(np.float64), minlength=bins) / count
    total = count.sum()
    ece = float(np.nansum(count * np.abs(mean - precision)) / total) if total else float("nan")
    return edges, count, mean, precision, ece


def reliability(
    scores: np.ndarray,
    correct: np.ndarray,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] = (),
    bins: int = 10,
) -> Reliability:
    """The reliability of ``scores`` [N] given which detections are correct [N] (true
    positives at IoU 0.5); with ``labels`` (1..K) and ``class_names``, per class too."""
    scores = np.clip(np.asarray(scores, np.float64), 0.0, 1.0)
    correct = np.asarray(correct, bool)
    edges, count, mean, precision, ece = _bins(scores, correct, bins)
    per_class = []
    if labels is not None:
        labels = np.asarray(labels)
        for c, name in enumerate(class_names, start=1):  # one row per class for the table
            mine = labels == c
            per_class.append(
                {
                    "class": name,
                    "detections": int(mine.sum()),
                    "ECE": _bins(scores[mine], correct[mine], bins)[-1],
                }
            )
    return Reliability(edges, count, mean, precision, ece, per_class)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EDGE, 1 - _EDGE)
    return np.log(p) - np.log1p(-p)


def fit_calibration(scores: np.ndarray, correct: np.ndarray, method: str = "temperature") -> dict:
    """A score map fitted so that scores match the share of correct detections, as a JSON-able
    dict for :func:`apply_calibration` (and a model file's metadata).

    ``temperature``: ``sigmoid(logit(s) / T)`` with the ``T`` of least log-loss (one
    number, keeps the shape of the scores). ``isotonic``: the non-decreasing step map of
    least squared error (scikit-learn's IsotonicRegression), interpolated between its steps.
    Both keep the order of the scores, so AP does not change.
    """
    scores = np.asarray(scores, np.float64)
    correct = np.asarray(correct, np.float64)
    if len(np.unique(correct)) < 2:
        raise InputError(
            f"calibration needs correct and wrong detections to learn from; got {len(scores)} "
            f"detections, {int(correct.sum())} correct"
        )
    if method == "temperature":
        from scipy.optimize import minimize_scalar

        z = _logit(scores)

        def log_loss(log_t: float) -> float:
            q = np.clip(1 / (1 + np.exp(-z / np.exp(log_t))), _EDGE, 1 - _EDGE)
            return float(-(correct * np.log(q) + (1 - correct) * np.log1p(-q)).mean())

        best = minimize_scalar(
            log_loss, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-6}
        )
        return {"method": "temperature", "temperature": float(np.exp(best.x))}
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, correct)
        return {
            "method": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
        }
    raise InputError(
        f"unknown calibration method {method!r}; choose from {', '.join(CALIBRATION_METHODS)}"
    )


def apply_calibration(calibration: dict, scores: np.ndarray) -> np.ndarray:
    """Scores mapped by a calibration from :func:`fit_calibration` (order kept)."""
    scores = np.asarray(scores, np.float64)
    if calibration["method"] == "temperature":
        return 1 / (1 + np.exp(-_logit(scores) / calibration["temperature"]))
    if calibration["method"] == "isotonic":
        mapped = np.interp(scores, calibration["x"], calibration["y"])
        return (1 - _ISOTONIC_TIE_BREAK) * mapped + _ISOTONIC_TIE_BREAK * scores
    raise InputError(f"unknown calibration method {calibration.get('method')!r}")


def check_calibration(calibration: object, source: str) -> dict:
    """A calibration read from a file, checked.

    Raises:
        ValueError: naming ``source`` and what is wrong.
    """
    ok = isinstance(calibration, dict) and calibration.get("method") in CALIBRATION_METHODS
    if ok and calibration["method"] == "temperature":
        t = calibration.get("temperature")
        ok = isinstance(t, (int, float)) and t > 0
    elif ok:
        x, y = calibration.get("x"), calibration.get("y")
        ok = isinstance(x, list) and isinstance(y, list) and len(x) == len(y) > 0
    if not ok:
        raise InputError(f"{source}: damaged calibration metadata {str(calibration)[:80]}")
    return calibration
