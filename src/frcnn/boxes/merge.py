"""Merging NMS clusters into one box: each kept box replaced by the score-weighted mean of
its cluster (a final step used by detectors trained from scratch on small medical sets).

Greedy NMS keeps the best box of each cluster and throws the rest away; averaging the
cluster instead uses every overlapping vote for where the object is, which tightens the
box when the candidates scatter around it.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou


def merge_clusters(
    boxes: Tensor, scores: Tensor, labels: Tensor, keep: Tensor, iou_threshold: float
) -> Tensor:
    """The score-weighted mean box of each NMS cluster: the kept box and every box of its
    class it suppressed.

    Args:
        boxes: FloatTensor[N, 4] xyxy candidates (before NMS).
        scores: FloatTensor[N].
        labels: Int64Tensor[N]; clusters never mix labels (as in ``batched_nms``).
        keep: Int64Tensor[K] what ``batched_nms(boxes, scores, labels, iou_threshold)``
            kept, highest score first.
        iou_threshold: the NMS threshold that formed the clusters.

    Returns:
        FloatTensor[K, 4]: the merged box of each kept box, in ``keep``'s order (its score
        and label stay the kept box's).
    """
    if keep.numel() == 0:
        return boxes.new_zeros((0, 4))
    # (K, N): which candidates each kept box would suppress. A suppressed box belongs to
    # the first kept box (highest score) that overlaps it: the one that removed it in NMS.
    # Two kept boxes of a class never overlap above the threshold, so each is its own.
    suppresses = (box_iou(boxes[keep], boxes) > iou_threshold) & (
        labels[keep][:, None] == labels[None, :]
    )
    suppresses[torch.arange(keep.numel(), device=keep.device), keep] = True
    owned = suppresses.any(0)
    owner = suppresses.to(torch.int8).argmax(0)  # first True per column
    weights = scores[owned].to(boxes.dtype)
    total = boxes.new_zeros((keep.numel(),)).index_add_(0, owner[owned], weights)
    summed = boxes.new_zeros((keep.numel(), 4)).index_add_(
        0, owner[owned], boxes[owned] * weights[:, None]
    )
    return summed / total[:, None]


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    sigma: float = 0.5,
    score_threshold: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """Gaussian soft-NMS (Bodla et al. 2017) per class: instead of removing the boxes that
    overlap a kept one, their scores decay by ``exp(-IoU^2 / sigma)``; boxes whose score
    falls under ``score_threshold`` are dropped.

    Sequential by definition (each pick decays the rest): one vectorised step per kept box,
    over the boxes still in play.

    Returns:
        ``(keep, new_scores)``: Int64Tensor[K] indices into ``boxes``, highest decayed score
        first, and FloatTensor[K] their decayed scores.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device), scores[:0]
    # Offsetting each class far apart keeps classes from decaying each other (batched_nms's trick).
    shifted = boxes + (labels.to(boxes) * (boxes.max() + 1))[:, None]
    iou = box_iou(shifted, shifted)
    current = scores.clone()
    alive = current >= score_threshold
    keep, kept_scores = [], []
    while bool(alive.any()):
        best = int(torch.where(alive, current, current.new_tensor(-1.0)).argmax())
        keep.append(best)
        kept_scores.append(current[best])
        alive[best] = False
        current = torch.where(alive, current * torch.exp(-(iou[best] ** 2) / sigma), current)
        alive &= current >= score_threshold
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device), torch.stack(kept_scores)
