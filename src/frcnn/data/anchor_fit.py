"""Anchors fitted to a dataset: KMeans over box sizes after the training resize."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes.overlap import wh_iou
from ..errors import InputError
from ..modeling.builder import ModelConfig
from .records import DetectionDataset

# Strides of the anchor levels of a ResNet FPN (P2..P6).
STRIDES = np.array([4.0, 8.0, 16.0, 32.0, 64.0])
NUM_LEVELS = len(STRIDES)


def anchor_shapes(sizes: list[list[float]], ratios: list[list[float]]) -> np.ndarray:
    """``(w, h)`` [A, 2] of every anchor of a configuration (ratio = h / w)."""
    out = [
        (s / np.sqrt(r), s * np.sqrt(r))
        for level_sizes, level_ratios in zip(sizes, ratios, strict=True)
        for s in level_sizes
        for r in level_ratios
    ]
    return np.asarray(out, np.float64)


def resized_box_sizes(
    ds: DetectionDataset, min_size: int, max_size: int, fixed_size: tuple[int, int] | None = None
) -> np.ndarray:
    """``(w, h)`` [N, 2] of every trained box after the model's resize of its image."""
    sizes = []
    for rec in ds.images:
        b = rec.boxes[~(rec.iscrowd | rec.ignore)]
        if not len(b):
            continue
        if fixed_size is not None:
            sx, sy = fixed_size[1] / rec.width, fixed_size[0] / rec.height
        else:
            sx = sy = min(
                min_size / min(rec.width, rec.height), max_size / max(rec.width, rec.height)
            )
        sizes.append(np.stack([(b[:, 2] - b[:, 0]) * sx, (b[:, 3] - b[:, 1]) * sy], 1))
    if not sizes:
        raise InputError(f"{ds.source}: no boxes to fit anchors to")
    return np.concatenate(sizes).astype(np.float64)


def mean_best_iou(wh: np.ndarray, sizes: list[list[float]], ratios: list[list[float]]) -> float:
    """Mean over the boxes ``wh`` [N, 2] of their best IoU with an anchor of the
    configuration (centres aligned: shape alone)."""
    return float(wh_iou(wh, anchor_shapes(sizes, ratios)).max(1).mean())


@dataclass
class AnchorFit:
    clusters: np.ndarray  # [k, 2] (w, h), sorted by area
    anchor_sizes: list[list[float]]
    aspect_ratios: list[list[float]]
    iou_default: float  # of the baseline anchors (the model's defaults unless given)
    iou_clusters: float
    iou_fitted: float
    num_boxes: int
    box_sizes: np.ndarray  # [N, 2] (w, h) of the boxes fitted, after the resize

    def model_args(self) -> dict[str, list[list[float]]]:
        """The model options (``frcnn.build_model(..., **fit.model_args())``)."""
        return {"anchor_sizes": self.anchor_sizes, "aspect_ratios": self.aspect_ratios}

    def snippet(self) -> dict:
        """A training configuration holding the anchors: ``frcnn train --anchors FILE`` or
        ``--config FILE`` reads it."""
        return {"model": {"args": self.model_args()}}


def fit_anchors(
    ds: DetectionDataset,
    k: int = 9,
    min_size: int = 800,
    max_size: int = 1333,
    fixed_size: tuple[int, int] | None = None,
    num_ratios: int = 3,
    seed: int = 0,
    baseline: tuple[list[list[float]], list[list[float]]] | None = None,
) -> AnchorFit:
    """KMeans (scikit-learn) over resized box ``(w, h)`` (printed as the data's clusters),
    and a configuration the model accepts: one anchor size per FPN level spread over the
    data's sizes, and ``num_ratios`` aspect ratios shared by all levels (1-D KMeans over
    log(h / w)), since every level needs the same number of anchors per location.
    ``baseline`` (sizes, ratios) is what the fit is compared with (``iou_default``); the
    model's default anchors unless given."""
    from sklearn.cluster import KMeans

    wh = resized_box_sizes(ds, min_size, max_size, fixed_size)
    k = min(k, len(np.unique(wh, axis=0)))
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(wh).cluster_centers_
    clusters = clusters[np.argsort(clusters[:, 0] * clusters[:, 1])]

    # One size per level, spread over the data's own size range: level l takes the size at
    # quantile (l + 0.5) / L of the box sizes, but never below twice its stride, so coarse
    # levels are not asked to place small anchors on a sparse grid.
    box_size = np.sqrt(wh[:, 0] * wh[:, 1])
    quantiles = np.quantile(np.log(box_size), (np.arange(NUM_LEVELS) + 0.5) / NUM_LEVELS)
    floor = 2.0 * STRIDES
    anchor_sizes = [
        [round(float(max(np.exp(q), f)), 1)] for q, f in zip(quantiles, floor, strict=True)
    ]

    log_ratio = np.log(wh[:, 1] / wh[:, 0]).reshape(-1, 1)
    r = min(num_ratios, len(np.unique(log_ratio)))
    centres = KMeans(n_clusters=r, n_init=10, random_state=seed).fit(log_ratio).cluster_centers_
    ratios = sorted(round(float(np.exp(c)), 3) for c in centres.reshape(-1))
    aspect_ratios = [list(ratios) for _ in range(NUM_LEVELS)]

    if baseline is None:
        default = ModelConfig()
        baseline = (default.anchor_sizes, default.aspect_ratios)
    return AnchorFit(
        clusters=clusters,
        anchor_sizes=anchor_sizes,
        aspect_ratios=aspect_ratios,
        iou_default=mean_best_iou(wh, *baseline),
        iou_clusters=float(wh_iou(wh, clusters).max(1).mean()),
        iou_fitted=mean_best_iou(wh, anchor_sizes, aspect_ratios),
        num_boxes=len(wh),
        box_sizes=wh,
    )
