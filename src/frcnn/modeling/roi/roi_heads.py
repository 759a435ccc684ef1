"""Second stage: classify and refine proposals, then turn them into detections."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...boxes.matcher import BACKGROUND, IGNORE, Matcher
from ...boxes.merge import merge_clusters
from ...boxes.nms import batched_nms
from ...boxes.ops import BoxCoder, box_iou, clip_boxes, remove_small_boxes
from ...boxes.sampler import subsample_labels
from ...errors import InputError
from .box_head import FastRCNNPredictor
from .pooler import MultiScaleRoIAlign

# Class label of a sampled RoI that is neither foreground nor background; excluded from losses.
IGNORE_LABEL = -1

# Detections narrower or shorter than this many pixels are dropped as empty.
MIN_DETECTION_SIZE = 1e-2
# What RoIHeads.merge accepts: plain NMS, or each NMS cluster averaged into one box.
MERGE_MODES = ("none", "mean")


class RoIHeads(nn.Module):
    """Pools proposals, runs the box head and predictor, computes losses or detections.

    Args:
        pooler: multi-scale RoIAlign over the pyramid.
        box_head: per-RoI feature extractor.
        predictor: class logits and class-specific deltas.
        fg_iou_thresh: proposals with IoU >= this with a ground-truth box are foreground.
        bg_iou_thresh: proposals whose best IoU is below this are background.
        batch_size_per_image: RoIs sampled per image for the loss.
        positive_fraction: largest foreground share of the sample.
        bbox_reg_weights: :class:`~frcnn.boxes.BoxCoder` weights.
        score_thresh: detections need a class probability above this.
        nms_thresh: IoU threshold of the per-class NMS.
        detections_per_img: most detections kept per image.
        class_weights: optional FloatTensor[K] weighting the classification loss per class.
        merge: "none" (plain NMS) or "mean" (each NMS cluster becomes its mean box).
        placeholder_classes: class indices never reported (dropped after the top-k, so the
            rest are what a model reporting them would keep).
    """

    def __init__(
        self,
        pooler: MultiScaleRoIAlign,
        box_head: nn.Module,
        predictor: FastRCNNPredictor,
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.5,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0),
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
        class_weights: Tensor | None = None,
        merge: str = "none",
        placeholder_classes: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if merge not in MERGE_MODES:
            raise InputError(f"box merge {merge!r}: choose {' or '.join(MERGE_MODES)}")
        # "mean": each NMS cluster becomes its score-weighted mean box (boxes/merge.py).
        self.merge = merge
        self.pooler = pooler
        self.box_head = box_head
        self.predictor = predictor
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=False)
        self.box_coder = BoxCoder(bbox_reg_weights)
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.class_weights: Tensor | None
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.reported: Tensor | None
        self.register_buffer("reported", None, persistent=False)
        if placeholder_classes:
            classes = predictor.cls_score.out_features
            if not all(0 < int(c) < classes for c in placeholder_classes):
                raise InputError(
                    f"placeholder_classes {list(placeholder_classes)} must be class indices in "
                    f"1..{classes - 1}"
                )
            reported = torch.ones(classes, dtype=torch.bool)
            reported[list(placeholder_classes)] = False
            self.register_buffer("reported", reported, persistent=False)

    def forward(
        self,
        features: Sequence[Tensor],
        proposals: Sequence[Tensor],
        image_sizes: Sequence[tuple[int, int]],
        targets: Sequence[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Detections in eval mode, losses in training mode.

        Args:
            features: pyramid levels, FloatTensor[N, C, H_l, W_l] each.
            proposals: per image FloatTensor[P_i, 4] xyxy in resized-image pixels.
            image_sizes: ``(height, width)`` of each resized image.
            targets: in training, per image ``boxes`` FloatTensor[G, 4] and ``labels``
                Int64Tensor[G] in 1..K-1.

        Returns:
            ``(detections, losses)``: in eval, per image ``boxes`` FloatTensor[D, 4],
            ``scores`` FloatTensor[D], ``labels`` Int64Tensor[D], sorted by score; in
            training, ``loss_classifier`` and ``loss_box_reg``.
        """
        if self.training:
            if targets is None:
                raise InputError("RoIHeads: targets are required in training mode")
            proposals, labels, regression_targets = self.sample_proposals(proposals, targets)
        class_logits, box_deltas = self.predictor(self.box_head(self.pooler(features, proposals)))
        if self.training:
            return [], self.losses(class_logits, box_deltas, labels, regression_targets)
        return self.postprocess(class_logits, box_deltas, proposals, image_sizes), {}

    @torch.no_grad()  # target assignment is bookkeeping, not part of the differentiable graph
    def sample_proposals(
        self, proposals: Sequence[Tensor], targets: Sequence[dict[str, Tensor]]
    ) -> tuple[list[Tensor], Tensor, Tensor]:
        """Add ground truth to the proposals, match, and sample a balanced set of RoIs.

        Returns:
            Per image the sampled RoIs FloatTensor[S_i, 4]; for all of them concatenated,
            class labels Int64Tensor[S] (0 background, -1 ignored) and regression targets
            FloatTensor[S, 4].
        """
        sampled, labels, regression_targets = [], [], []
        for props, target in zip(proposals, targets, strict=True):
            gt_boxes, gt_labels = target["boxes"], target["labels"]
            # Ground truth joins the proposals so every object has at least one good RoI,
            # which matters most early in training when proposals are poor.
            props = torch.cat([props, gt_boxes.to(props.dtype)])
            matched, match_labels = self.matcher(box_iou(gt_boxes, props))
            pos, neg = subsample_labels(
                match_labels, self.batch_size_per_image, self.positive_fraction
            )
            keep = torch.cat([pos, neg])
            rois = props[keep]
            if gt_boxes.numel() == 0:
                roi_labels = torch.zeros(keep.numel(), dtype=torch.int64, device=props.device)
                roi_targets = torch.zeros_like(rois)
            else:
                roi_labels = gt_labels[matched[keep]]
                roi_labels[match_labels[keep] == BACKGROUND] = 0
                roi_labels[match_labels[keep] == IGNORE] = IGNORE_LABEL
                roi_targets = self.box_coder.encode(gt_boxes[matched[keep]], rois)
            sampled.append(rois)
            labels.append(roi_labels)
            regression_targets.append(roi_targets)
        return sampled, torch.cat(labels), torch.cat(regression_targets)

    def losses(
        self, class_logits: Tensor, box_deltas: Tensor, labels: Tensor, regression_targets: Tensor
    ) -> dict[str, Tensor]:
        """Cross-entropy over all sampled RoIs; smooth-L1 on the true class's deltas of the
        foreground ones, normalised by the sample size (so no foreground gives exactly 0)."""
        loss_classifier = F.cross_entropy(
            class_logits, labels, weight=self.class_weights, ignore_index=IGNORE_LABEL
        )
        pos = torch.where(labels > 0)[0]
        # (R, K*4) -> (R, K, 4), then each positive RoI's deltas for its own class.
        deltas = box_deltas.reshape(box_deltas.shape[0], -1, 4)[pos, labels[pos]]
        loss_box_reg = F.smooth_l1_loss(
            deltas, regression_targets[pos], beta=1 / 9, reduction="sum"
        ) / max(labels.numel(), 1)
        return {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}

    @torch.no_grad()
    def postprocess(
        self,
        class_logits: Tensor,
        box_deltas: Tensor,
        proposals: Sequence[Tensor],
        image_sizes: Sequence[tuple[int, int]],
        limits: tuple[float, float, int] | None = None,
    ) -> list[dict[str, Tensor]]:
        """Per-class boxes above the score threshold, per-class NMS (each cluster merged
        into its mean box when ``merge`` is "mean"), top-k per image. ``limits`` =
        ``(score_thresh, nms_thresh, detections_per_img)`` to use instead of the module's
        own, to look at what each step removes (``frcnn explain``)."""
        score_thresh, nms_thresh, top = limits or (
            self.score_thresh,
            self.nms_thresh,
            self.detections_per_img,
        )
        num_classes = class_logits.shape[-1]
        scores = F.softmax(class_logits, -1)
        if len(proposals) == 1:  # one image: no split (and no data-dependent sizes to export)
            per_image = [(scores, box_deltas)]
        else:
            counts = [len(p) for p in proposals]
            per_image = list(zip(scores.split(counts), box_deltas.split(counts), strict=True))
        detections = []
        for (img_scores, img_deltas), props, size in zip(
            per_image, proposals, image_sizes, strict=True
        ):
            # Drop the background column, then work on (proposal, class) pairs that pass
            # the threshold; only those are decoded.
            fg_scores = img_scores[:, 1:]
            roi_idx, cls_idx = torch.where(fg_scores > score_thresh)
            labels = cls_idx + 1
            # (R, K*4) -> (R, K, 4), then the chosen class's deltas per pair.
            deltas = img_deltas.reshape(-1, num_classes, 4)[roi_idx, labels]
            boxes = clip_boxes(self.box_coder.decode(deltas, props[roi_idx]), size)
            pair_scores = fg_scores[roi_idx, cls_idx]
            keep = remove_small_boxes(boxes, MIN_DETECTION_SIZE)
            boxes, pair_scores, labels = boxes[keep], pair_scores[keep], labels[keep]
            keep = batched_nms(boxes, pair_scores, labels, nms_thresh)
            kept_boxes = (
                merge_clusters(boxes, pair_scores, labels, keep, nms_thresh)
                if self.merge == "mean"
                else boxes[keep]
            )
            keep, kept_boxes = keep[:top], kept_boxes[:top]
            if self.reported is not None:
                shown = self.reported[labels[keep]]
                keep, kept_boxes = keep[shown], kept_boxes[shown]
            detections.append(
                {"boxes": kept_boxes, "scores": pair_scores[keep], "labels": labels[keep]}
            )
        return detections
