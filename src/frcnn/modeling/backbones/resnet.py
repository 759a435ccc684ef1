"""ResNet bodies (torchvision's ResNet-18/34/50/101) returning the stage outputs C2..C5."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torchvision.models import resnet

from ...errors import InputError
from ..layers.norm import norm_layer
from .base import BACKBONES, BackboneSpec, FeatureLevel, check_levels
from .weights import load_matching

RESNETS: dict[str, tuple[Callable[..., resnet.ResNet], resnet.WeightsEnum]] = {
    "resnet18": (resnet.resnet18, resnet.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (resnet.resnet34, resnet.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (resnet.resnet50, resnet.ResNet50_Weights.IMAGENET1K_V1),
    "resnet101": (resnet.resnet101, resnet.ResNet101_Weights.IMAGENET1K_V1),
}

# Trainable-stage order, from the last stage back to the stem.
_STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")


class ResNetBody(nn.Module):
    """The stem and four stages of a torchvision ResNet, returning the stage outputs C2..C5.

    Parameter names are torchvision's (``conv1``, ``bn1``, ``layer1`` ...) so ImageNet
    checkpoints load as they are.

    Args:
        name: ``resnet18``, ``resnet34``, ``resnet50`` or ``resnet101``.
        norm: ``frozen_bn``, ``bn`` or ``gn``.
        trainable_layers: how many stages, counted from ``layer4`` back to the stem (0-5),
            receive gradients.
        weights: optional state dict to load (ImageNet classifier keys are ignored).
        checkpointing: in training, recompute the activations of ``layer3`` and ``layer4``
            in the backward pass instead of storing them (less memory, about a third more
            compute for those stages).

    Attributes:
        levels: C2..C5 at strides 4, 8, 16, 32 (see :mod:`frcnn.modeling.backbones.base`).
        extra_levels: 1, Faster R-CNN's max-pooled P6 on top of the pyramid.
    """

    extra_levels = 1

    def __init__(
        self,
        name: str = "resnet50",
        norm: str = "frozen_bn",
        trainable_layers: int = 3,
        weights: dict[str, Tensor] | None = None,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if name not in RESNETS:
            raise InputError(f"unknown ResNet {name!r}; choose one of {sorted(RESNETS)}")
        if not 0 <= trainable_layers <= 5:
            raise InputError(f"trainable_layers must be in 0..5, got {trainable_layers}")
        net = RESNETS[name][0](weights=None, norm_layer=norm_layer(norm))
        net.fc = nn.Identity()
        if weights is not None:  # the ImageNet classifier (fc) is not part of the body
            body = {k: v for k, v in weights.items() if not k.startswith("fc.")}
            load_matching(net, body, f"{name} backbone weights")
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        stage_width = 64 if name in ("resnet18", "resnet34") else 256
        self.levels = check_levels(
            [FeatureLevel(f"c{i + 2}", stage_width * 2**i, 4 * 2**i) for i in range(4)], name
        )
        self.checkpointing = checkpointing

        trainable = set(_STAGES[:trainable_layers])
        if trainable_layers == 5:
            trainable.add("bn1")
        for param_name, param in self.named_parameters():
            if param_name.split(".")[0] not in trainable:
                param.requires_grad_(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """FloatTensor[N, 3, H, W] -> [C2, C3, C4, C5] at strides 4, 8, 16, 32."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        if self.checkpointing and self.training and torch.is_grad_enabled():
            c4 = checkpoint(self.layer3, c3, use_reentrant=False)
            c5 = checkpoint(self.layer4, c4, use_reentrant=False)
        else:
            c4 = self.layer3(c3)
            c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


for _name, (_, _weights) in RESNETS.items():
    BACKBONES.register(
        _name, BackboneSpec(partial(ResNetBody, _name), len(_STAGES), pretrained_url=_weights.url)
    )
