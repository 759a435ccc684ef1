"""Region proposal network: objectness and box deltas per anchor, then proposal selection."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...boxes.matcher import Matcher
from ...boxes.nms import batched_nms
from ...boxes.ops import BoxCoder, box_iou, clip_boxes, remove_small_boxes
from ...boxes.sampler import subsample_labels
from ...errors import InputError
from .anchors import AnchorGenerator


class RPNHead(nn.Module):
    """Shared 3x3 conv + ReLU (``conv_depth`` of them in a row), then 1x1 convs for objectness
    (one per anchor) and deltas (four).

    Args:
        in_channels: channels of every pyramid level.
        num_anchors: anchors per location (the same on every level).
        conv_depth: shared 3x3 convs (torchvision's v2 model has 2); the first is ``conv``,
            the others ``extra_convs``.
    """

    def __init__(self, in_channels: int, num_anchors: int, conv_depth: int = 1) -> None:
        super().__init__()
        if conv_depth < 1:
            raise InputError(f"rpn_conv_depth must be at least 1, got {conv_depth}")
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)
        self.extra_convs = nn.ModuleList(
            nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)
            for _ in range(conv_depth - 1)
        )
        self.objectness = nn.Conv2d(in_channels, num_anchors, kernel_size=1)
        self.deltas = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1)
        for layer in (self.conv, *self.extra_convs, self.objectness, self.deltas):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: objectness FloatTensor[N, A, H, W] and deltas FloatTensor[N, A*4, H, W]."""
        objectness, deltas = [], []
        for x in features:
            t = F.relu(self.conv(x))
            for conv in self.extra_convs:
                t = F.relu(conv(t))
            objectness.append(self.objectness(t))
            deltas.append(self.deltas(t))
        return objectness, deltas


def flatten_level(x: Tensor, values_per_anchor: int) -> Tensor:
    n, _, h, w = x.shape
    # (N, A*C, H, W) -> (N, A, C, H, W) -> (N, H, W, A, C) -> (N, H*W*A, C)
    x = x.view(n, -1, values_per_anchor, h, w).permute(0, 3, 4, 1, 2)
    return x.reshape(n, -1, values_per_anchor)


class RegionProposalNetwork(nn.Module):
    """Scores anchors, keeps the best per level, decodes and de-duplicates them into proposals.

    Values given as ``(train, test)`` pairs are picked by ``self.training``.

    Args:
        anchor_generator: anchors per pyramid level.
        head: objectness and delta predictor.
        fg_iou_thresh: anchors with IoU >= this with a ground-truth box are foreground.
        bg_iou_thresh: anchors whose best IoU is below this are background.
        batch_size_per_image: anchors sampled per image for the loss.
        positive_fraction: largest foreground share of the sample.
        pre_nms_top_n: anchors kept per level, by objectness, before NMS.
        post_nms_top_n: proposals kept per image after NMS.
        nms_thresh: IoU threshold of the NMS run independently on each level.
        min_size: proposals with a side shorter than this (pixels) are dropped.
        score_thresh: proposals with objectness probability below this are dropped.
    """

    def __init__(
        self,
        anchor_generator: AnchorGenerator,
        head: RPNHead,
        fg_iou_thresh: float = 0.7,
        bg_iou_thresh: float = 0.3,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        pre_nms_top_n: tuple[int, int] = (2000, 1000),
        post_nms_top_n: tuple[int, int] = (2000, 1000),
        nms_thresh: float = 0.7,
        min_size: float = 1e-3,
        score_thresh: float = 0.0,
    ) -> None:
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self._pre_nms_top_n = tuple(pre_nms_top_n)
        self._post_nms_top_n = tuple(post_nms_top_n)
        self.nms_thresh = nms_thresh
        self.min_size = min_size
        self.score_thresh = score_thresh

    @property
    def pre_nms_top_n(self) -> int:
        return self._pre_nms_top_n[0] if self.training else self._pre_nms_top_n[1]

    @property
    def post_nms_top_n(self) -> int:
        return self._post_nms_top_n[0] if self.training else self._post_nms_top_n[1]

    def forward(
        self,
        features: Sequence[Tensor],
        batch_shape: tuple[int, int],
        image_sizes: Sequence[tuple[int, int]],
        targets: Sequence[dict[str, Tensor]] | None = None,
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Propose boxes.

        Args:
            features: pyramid levels, FloatTensor[N, C, H_l, W_l] each.
            batch_shape: ``(height, width)`` of the padded batch.
            image_sizes: ``(height, width)`` of each resized image before padding.
            targets: in training, per image ``boxes`` (FloatTensor[G, 4] xyxy in the resized
                image's pixels).

        Returns:
            ``(proposals, losses)``: per image FloatTensor[P, 4] xyxy sorted by objectness
            within each level; losses ``loss_objectness`` and ``loss_rpn_box_reg`` in
            training, empty otherwise.
        """
        objectness, deltas = self.head(features)
        anchors = self.anchor_generator(batch_shape, features)
        # Per level: (N, A, H, W) -> (N, H*W*A) and (N, A*4, H, W) -> (N, H*W*A, 4)
        objectness = [flatten_level(o, 1).squeeze(-1) for o in objectness]
        deltas = [flatten_level(d, 4) for d in deltas]

        proposals = self.select_proposals(objectness, deltas, anchors, image_sizes)

        losses: dict[str, Tensor] = {}
        if self.training:
            if targets is None:
                raise InputError("RegionProposalNetwork: targets are required in training mode")
            losses = self.losses(
                torch.cat(objectness, dim=1), torch.cat(deltas, dim=1), torch.cat(anchors), targets
            )
        return proposals, losses

    @torch.no_grad()  # proposals are treated as constants by the box head, as in the paper
    def select_proposals(
        self,
        objectness: Sequence[Tensor],
        deltas: Sequence[Tensor],
        anchors: Sequence[Tensor],
        image_sizes: Sequence[tuple[int, int]],
    ) -> list[Tensor]:
        """Per image the proposals: the top-k anchors of each level decoded, then
        :meth:`candidates`, per-level NMS and the best ``post_nms_top_n``."""
        boxes, scores, levels = self.top_anchors(objectness, deltas, anchors)
        return [
            self.best_after_nms(*self.candidates(img_boxes, img_scores, levels, size))
            for img_boxes, img_scores, size in zip(boxes, scores, image_sizes, strict=True)
        ]

    def best_after_nms(self, boxes: Tensor, scores: Tensor, levels: Tensor) -> Tensor:
        """One image's proposals from its :meth:`candidates`: NMS within each level, then the
        best ``post_nms_top_n``."""
        keep = batched_nms(boxes, scores, levels, self.nms_thresh)
        return boxes[keep[: self.post_nms_top_n]]

    def top_anchors(
        self, objectness: Sequence[Tensor], deltas: Sequence[Tensor], anchors: Sequence[Tensor]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The ``pre_nms_top_n`` anchors of each level by objectness, decoded: boxes
        [N, k_total, 4], probabilities [N, k_total] and each one's level [k_total]."""
        num_images = objectness[0].shape[0]
        batch_idx = torch.arange(num_images, device=objectness[0].device)[:, None]
        scores, boxes, levels = [], [], []
        for level, (obj, dlt, anc) in enumerate(zip(objectness, deltas, anchors, strict=True)):
            k = min(self.pre_nms_top_n, obj.shape[1])
            top_obj, top_idx = obj.topk(k, dim=1)  # (N, k)
            # Only the kept anchors are decoded: decoding is elementwise, so this gives the
            # same boxes as decoding every anchor, at a fraction of the cost.
            top_deltas = dlt[batch_idx, top_idx].reshape(-1, 4)  # (N*k, 4)
            top_anchors = anc[top_idx].reshape(-1, 4)  # (N*k, 4)
            boxes.append(self.box_coder.decode(top_deltas, top_anchors).view(num_images, k, 4))
            scores.append(top_obj)
            levels.append(torch.full((k,), level, dtype=torch.int64, device=obj.device))
        return torch.cat(boxes, dim=1), torch.sigmoid(torch.cat(scores, dim=1)), torch.cat(levels)

    def candidates(
        self, boxes: Tensor, scores: Tensor, levels: Tensor, size: tuple[int, int]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One image's decoded top-k boxes before NMS: clipped to the image, without the
        tiny ones and those under the score threshold; with their probabilities and levels."""
        boxes = clip_boxes(boxes, size)
        keep = remove_small_boxes(boxes, self.min_size)
        keep = keep[scores[keep] >= self.score_thresh]
        return boxes[keep], scores[keep], levels[keep]

    def losses(
        self,
        objectness: Tensor,
        deltas: Tensor,
        anchors: Tensor,
        targets: Sequence[dict[str, Tensor]],
    ) -> dict[str, Tensor]:
        """Objectness BCE and smooth-L1 box loss over a balanced sample of anchors.

        Args:
            objectness: FloatTensor[N, A_total] logits.
            deltas: FloatTensor[N, A_total, 4].
            anchors: FloatTensor[A_total, 4], shared by every image.
            targets: per image ``boxes`` FloatTensor[G, 4]; G may be 0.
        """
        sampled, sampled_labels, pos_flat, pos_targets = self.assign_targets(anchors, targets)
        loss_objectness = F.binary_cross_entropy_with_logits(
            objectness.reshape(-1)[sampled], sampled_labels
        )
        # Normalised by the whole sample, so an image with no foreground adds exactly zero.
        loss_box = F.smooth_l1_loss(
            deltas.reshape(-1, 4)[pos_flat], pos_targets, beta=1 / 9, reduction="sum"
        ) / max(sampled.numel(), 1)
        return {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_box}

    @torch.no_grad()  # target assignment is bookkeeping, not part of the differentiable graph
    def assign_targets(
        self, anchors: Tensor, targets: Sequence[dict[str, Tensor]]
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Sample anchors and build their targets, with indices into the flattened batch.

        Returns:
            ``(sampled, labels, pos, pos_targets)``: indices into ``N*A_total`` of every
            sampled anchor and their 0/1 labels; indices of the sampled positives and their
            regression targets FloatTensor[P, 4].
        """
        num_anchors = anchors.shape[0]
        sampled, labels, pos_all, pos_targets = [], [], [], []
        for i, target in enumerate(targets):
            gt = target["boxes"]
            matched, match_labels = self.matcher(box_iou(gt, anchors))
            pos, neg = subsample_labels(
                match_labels, self.batch_size_per_image, self.positive_fraction
            )
            offset = i * num_anchors
            sampled += [pos + offset, neg + offset]
            labels += [
                torch.ones(pos.numel(), device=anchors.device),
                torch.zeros(neg.numel(), device=anchors.device),
            ]
            pos_all.append(pos + offset)
            pos_targets.append(self.box_coder.encode(gt[matched[pos]], anchors[pos]))
        return torch.cat(sampled), torch.cat(labels), torch.cat(pos_all), torch.cat(pos_targets)
