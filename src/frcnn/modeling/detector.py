"""The Faster R-CNN detector: transform -> backbone -> RPN -> RoI heads -> postprocess."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .proposals.rpn import RegionProposalNetwork
from .roi.roi_heads import RoIHeads
from .transform import ImageTransform
from .validate import check_images, check_targets


class FasterRCNN(nn.Module):
    """Two-stage detector with torchvision's calling convention.

    ``model(images)`` in eval mode returns, per image, ``boxes`` FloatTensor[D, 4] (xyxy
    pixels of that original image), ``scores`` FloatTensor[D] and ``labels`` Int64Tensor[D]
    (1..K-1). ``model(images, targets)`` in training mode returns a dict of losses:
    ``loss_objectness``, ``loss_rpn_box_reg``, ``loss_classifier``, ``loss_box_reg``.

    Args:
        transform: normalises, resizes and batches images.
        backbone: image -> list of pyramid levels, with ``out_channels`` and ``strides``.
        rpn: proposal stage.
        roi_heads: box classification and refinement stage.
        num_classes: number of classes including background (0).
        channels_last: run the backbone on an NHWC batch with NHWC convolution weights;
            oneDNN's convolutions are markedly faster in that layout on CPU, and the results
            equal NCHW up to float rounding.
    """

    def __init__(
        self,
        transform: ImageTransform,
        backbone: nn.Module,
        rpn: RegionProposalNetwork,
        roi_heads: RoIHeads,
        num_classes: int,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.transform = transform
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.num_classes = num_classes
        self.channels_last = channels_last
        if channels_last:
            # Convolution weights in NHWC too: oneDNN then needs no reorder per call.
            self.to(memory_format=torch.channels_last)
        # The resolved build configuration; set by frcnn.build_model, saved with the weights.
        self.config: dict[str, Any] = {}
        # Names of classes 1..K-1, when known (set by load_model or the caller).
        self.class_names: list[str] | None = None
        # A score map fitted by `frcnn calibrate` (evaluation.calibration), kept in the model
        # file; predictions use it only when asked (calibrated=True).
        self.calibration: dict | None = None
        # The score threshold the model was selected and scored at (a run's eval.conf), kept
        # in the model file; predict, eval and calibrate count at it unless given another.
        self.conf: float | None = None

    def forward(
        self, images: Sequence[Tensor], targets: Sequence[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """Losses in training mode, detections in eval mode (see the class docstring).

        Args:
            images: float CHW tensors in 0..1, any sizes.
            targets: training only; per image ``boxes`` FloatTensor[N, 4] xyxy pixels and
                ``labels`` Int64Tensor[N]. N may be 0 (an image with no objects).
        """
        check_images(images, self.transform.mean.shape[0])
        if self.training:
            check_targets(targets, len(images), self.num_classes)
        original_sizes = [(im.shape[-2], im.shape[-1]) for im in images]  # SymInts when exported
        batch, image_sizes, targets = self.transform(images, targets if self.training else None)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        features = self.backbone(batch)
        proposals, rpn_losses = self.rpn(features, tuple(batch.shape[-2:]), image_sizes, targets)
        detections, head_losses = self.roi_heads(features, proposals, image_sizes, targets)
        if self.training:
            return {**rpn_losses, **head_losses}
        return self.transform.postprocess(detections, image_sizes, original_sizes)
