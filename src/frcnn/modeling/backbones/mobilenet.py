"""MobileNetV3-Large body (torchvision's), returning the two stride-32 outputs that
torchvision's ``fasterrcnn_mobilenet_v3_large_fpn`` feeds its FPN."""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torchvision.models import mobilenet_v3_large
from torchvision.models.mobilenetv3 import MobileNet_V3_Large_Weights

from ...errors import InputError
from ..layers.norm import norm_layer
from .base import BACKBONES, BackboneSpec, FeatureLevel, check_levels
from .weights import load_matching


class MobileNetV3Body(nn.Module):
    """The 17 ``features`` blocks of torchvision's MobileNetV3-Large, returning the outputs
    of block 13 (160 channels) and block 16 (960 channels), both at stride 32: the layers
    torchvision's detection model takes, so its weights load under the same names
    (``backbone.body.<block>...``).

    Args:
        norm: ``frozen_bn``, ``bn`` or ``gn``.
        trainable_layers: how many of the 6 stages (blocks 16, 13-15, 7-12, 4-6, 2-3, 0-1,
            counted from the output back to the stem) receive gradients.
        weights: optional ImageNet state dict (``features.*`` keys; the classifier is ignored).
        checkpointing: in training, recompute the activations of blocks 7-16 in the backward
            pass instead of storing them.

    Attributes:
        levels: C5a (160 channels) and C5 (960 channels), both at stride 32.
        extra_levels: 1, the max-pooled level the FPN adds on top (stride 64).
    """

    extra_levels = 1
    # First block of each stage: where a stride-2 block starts one (torchvision's _is_cn).
    STAGE_STARTS = (0, 2, 4, 7, 13, 16)
    OUTPUTS = (13, 16)

    def __init__(
        self,
        norm: str = "frozen_bn",
        trainable_layers: int = 3,
        weights: dict[str, Tensor] | None = None,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if not 0 <= trainable_layers <= len(self.STAGE_STARTS):
            raise InputError(f"trainable_layers must be in 0..6, got {trainable_layers}")
        net = mobilenet_v3_large(weights=None, norm_layer=norm_layer(norm))
        if weights is not None:  # ImageNet keys are features.*; the classifier is not used
            features = {
                k.removeprefix("features."): v
                for k, v in weights.items()
                if not k.startswith("classifier.")
            }
            load_matching(net.features, features, "mobilenet_v3_large backbone weights")
        for i, block in enumerate(net.features):
            self.add_module(str(i), block)
        self.levels = check_levels(
            [FeatureLevel("c5a", 160, 32), FeatureLevel("c5", 960, 32)], "mobilenet_v3_large"
        )
        self.checkpointing = checkpointing
        stages = len(self.STAGE_STARTS)
        frozen_before = (
            len(net.features)
            if trainable_layers == 0
            else self.STAGE_STARTS[stages - trainable_layers]
        )
        for i, block in enumerate(net.features):
            if i < frozen_before:
                block.requires_grad_(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """FloatTensor[N, 3, H, W] -> [C5a, C5], both at stride 32."""
        outputs = []
        late = self.checkpointing and self.training and torch.is_grad_enabled()
        for i, block in enumerate(self.children()):
            x = checkpoint(block, x, use_reentrant=False) if late and i >= 7 else block(x)
            if i in self.OUTPUTS:
                outputs.append(x)
        return outputs


BACKBONES.register(
    "mobilenet_v3_large",
    BackboneSpec(
        partial(MobileNetV3Body),
        len(MobileNetV3Body.STAGE_STARTS),
        pretrained_url=MobileNet_V3_Large_Weights.IMAGENET1K_V1.url,
    ),
)
