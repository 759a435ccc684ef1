"""Several detectors, or one detector on several views of each image (test-time
augmentation), merged into one set of detections per image with the ensemble-boxes
library: Weighted Boxes Fusion (Solovyev et al. 2021), NMS, soft-NMS or non-maximum
weighted.

WBF averages the boxes that several models agree on; fed a single model's output it
averages a detection with its own near-duplicates and scores worse than NMS, so one model
without TTA is predicted as usual (no fusion).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..boxes.merge import soft_nms
from ..defaults import TTA_SCALES
from ..errors import InputError, require
from ..modeling.detector import FasterRCNN
from ..modeling.transform import ImageTransform
from .detectors import grouped_forward, model_device
from .options import MergeOptions

__all__ = ["MergeOptions", "MergedDetector", "View", "fuse", "rescaled", "run_view", "tta_views"]


@dataclass(frozen=True)
class View:
    """One test-time view: the image flipped left-right or not, and resized by ``scale``
    relative to the model's own input size."""

    flip: bool = False
    scale: float = 1.0


def tta_views(scales: Sequence[float] = TTA_SCALES, flip: bool = True) -> list[View]:
    """The identity, a flipped copy at scale 1 (``flip``), and each other scale."""
    views = [View()] + ([View(flip=True)] if flip else [])
    return views + [View(scale=float(s)) for s in scales if s != 1.0]


class MergedDetector(nn.Module):
    """Detectors (each on every view) as one detector: ``model(images)`` returns per image
    ``boxes`` FloatTensor[D, 4] xyxy pixels of that image, ``scores``, ``labels``, like
    :class:`FasterRCNN` in eval mode. One model on one view is that model's output."""

    def __init__(
        self,
        models: Sequence[FasterRCNN],
        views: Sequence[View] = (View(),),
        options: MergeOptions | None = None,
    ) -> None:
        super().__init__()
        if not models:
            raise InputError("an ensemble needs at least one model")
        self.members = nn.ModuleList(models)
        self.views = list(views)
        self.options = options or MergeOptions()
        weights = self.options.model_weights
        if weights is not None and len(weights) != len(models):
            raise InputError(f"{len(weights)} model weights given for {len(models)} models")
        self.run_weights = [float(w) for w in (weights or [1.0] * len(models)) for _ in self.views]
        if len(self.run_weights) > 1:
            _fusion_library(self.options.method)  # before any work, not at the first image

    @property
    def class_names(self) -> list[str] | None:
        return self.members[0].class_names

    @property
    def detections_per_img(self) -> int:
        return max(m.roi_heads.detections_per_img for m in self.members)

    @property
    def conf(self) -> float | None:
        return getattr(self.members[0], "conf", None)

    @torch.no_grad()
    def forward(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        runs = [run_view(m, images, v) for m in self.members for v in self.views]
        if len(runs) == 1:
            return runs[0]
        o, limit = self.options, self.detections_per_img
        return [
            fuse(
                [run[i] for run in runs],
                (int(im.shape[-1]), int(im.shape[-2])),
                o,
                self.run_weights,
                limit,
            )
            for i, im in enumerate(images)
        ]


def rescaled(model: FasterRCNN, scale: float) -> FasterRCNN:
    """``model`` with its input sizes multiplied by ``scale``: a view of the same stages
    and weights (nothing copied, nothing in ``model`` changed) with a transform and a
    configuration of its own."""
    if scale == 1.0:
        return model
    t = model.transform

    def times(sizes: Sequence[int] | None) -> tuple[int, ...] | None:
        return None if sizes is None else tuple(max(1, round(v * scale)) for v in sizes)

    view = copy.copy(model)
    if isinstance(model, nn.Module):
        view._modules = dict(model._modules)  # shares every stage; the transform is replaced
    view.transform = ImageTransform(
        times(t.min_size),
        max(1, round(t.max_size * scale)),
        t.mean.flatten().tolist(),
        t.std.flatten().tolist(),
        t.size_divisible,
        times(t.fixed_size),
    ).to(t.mean.device)
    view.transform.train(t.training)
    view.config = {**getattr(model, "config", {}), "min_size": view.transform.min_size}
    view.config.update(max_size=view.transform.max_size, fixed_size=view.transform.fixed_size)
    return view


def run_view(model: FasterRCNN, images: Sequence[Tensor], view: View) -> list[dict]:
    """``model``'s detections on ``view`` of each image, in the original image's pixels
    (images batched only with those of the same padded size)."""
    device = model_device(model)
    inputs = [(im.flip(-1) if view.flip else im).to(device) for im in images]
    model.eval()
    detections = grouped_forward(rescaled(model, view.scale), inputs)
    if view.flip:
        for det, im in zip(detections, images, strict=True):
            x1, y1, x2, y2 = det["boxes"].unbind(-1)
            width = im.shape[-1]
            det["boxes"] = torch.stack((width - x2, y1, width - x1, y2), -1)
    return detections


def fuse(
    runs: Sequence[dict[str, Tensor]],
    size: tuple[int, int],
    options: MergeOptions,
    weights: Sequence[float],
    limit: int,
) -> dict[str, Tensor]:
    """One image's detections from several runs fused by ``options.method``; boxes in
    pixels of an image of ``size`` (width, height); at most ``limit`` kept, best first."""
    like = runs[0]["boxes"]
    scale = np.array(size * 2, np.float64)
    boxes = [np.clip(r["boxes"].float().cpu().numpy() / scale, 0, 1) for r in runs]
    scores = [r["scores"].float().cpu().numpy() for r in runs]
    labels = [r["labels"].cpu().numpy() for r in runs]
    if sum(len(s) for s in scores) == 0:
        return {k: v[:0] for k, v in runs[0].items()}
    o = options
    eb: Any = _fusion_library(o.method)
    if o.method == "wbf":
        b, s, c = eb.weighted_boxes_fusion(
            boxes, scores, labels, weights=list(weights), iou_thr=o.iou, skip_box_thr=o.skip_box
        )
    elif o.method == "nmw":
        b, s, c = eb.non_maximum_weighted(
            boxes, scores, labels, weights=list(weights), iou_thr=o.iou, skip_box_thr=o.skip_box
        )
    else:
        # ensemble-boxes' NMS divides weighted scores by the weights' sum (an ensemble of two
        # equal models would halve every score); scale by weight / largest weight instead,
        # as its WBF and NMW do, so scores stay comparable with --conf.
        top = max(weights)
        scores = [sc * (w / top) for sc, w in zip(scores, weights, strict=True)]
        if o.method == "soft-nms":
            # ensemble-boxes' soft_nms returns the boxes it keeps with their undecayed scores,
            # so near-duplicates keep full scores; ours returns the decayed ones.
            return _soft_nms(boxes, scores, labels, size, o.skip_box or 1e-3, limit, like)
        b, s, c = eb.nms(boxes, scores, labels, iou_thr=o.iou)
    order = np.argsort(-s, kind="stable")[:limit]
    return {
        "boxes": torch.as_tensor(b[order] * scale, dtype=like.dtype, device=like.device),
        "scores": torch.as_tensor(s[order], dtype=runs[0]["scores"].dtype, device=like.device),
        "labels": torch.as_tensor(c[order], dtype=torch.int64, device=like.device),
    }


def _fusion_library(method: str) -> object:
    """ensemble-boxes, which fuses by WBF, NMW and NMS (soft-NMS is frcnn's own).

    Raises:
        MissingDependencyError: it is not installed, naming the extra.
    """
    if method == "soft-nms":
        return None
    return require("ensemble_boxes", "ensemble", f"fusing detections by {method}")


def _soft_nms(
    boxes: list,
    scores: list,
    labels: list,
    size: tuple[int, int],
    threshold: float,
    limit: int,
    like: Tensor,
) -> dict[str, Tensor]:
    """Gaussian soft-NMS over every run's boxes together (pixels, on ``like``'s device)."""
    b = torch.as_tensor(np.concatenate(boxes) * np.array(size * 2), dtype=torch.float32)
    s = torch.as_tensor(np.concatenate(scores), dtype=torch.float32)
    c = torch.as_tensor(np.concatenate(labels), dtype=torch.int64)
    keep, new_scores = soft_nms(b, s, c, score_threshold=threshold)
    keep, new_scores = keep[:limit], new_scores[:limit]
    return {
        "boxes": b[keep].to(like),
        "scores": new_scores.to(like),
        "labels": c[keep].to(like.device),
    }
