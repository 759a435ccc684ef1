"""ResNet bodies with a feature pyramid on top; backbones declare their channels and strides."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torchvision.models import resnet
from torchvision.ops import FrozenBatchNorm2d

from ...io.checkpoint import load_state_dict_file
from ..necks.fpn import FeaturePyramidNetwork


class FrozenBN(FrozenBatchNorm2d):
    """torchvision's FrozenBatchNorm2d (same buffers and state-dict keys) computed by the
    fused inference BatchNorm kernel: one pass over the feature map instead of two."""

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )


NORMS: dict[str, Callable[[int], nn.Module]] = {
    # Fine-tuning from pretrained weights: statistics and affine parameters stay fixed.
    "frozen_bn": FrozenBN,
    # Training from scratch with reasonable batch sizes.
    "bn": nn.BatchNorm2d,
    # Training from scratch with small batches, where batch statistics are noisy.
    "gn": lambda channels: nn.GroupNorm(32, channels),
}

RESNETS: dict[str, tuple[Callable[..., resnet.ResNet], resnet.WeightsEnum]] = {
    "resnet18": (resnet.resnet18, resnet.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (resnet.resnet34, resnet.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (resnet.resnet50, resnet.ResNet50_Weights.IMAGENET1K_V1),
    "resnet101": (resnet.resnet101, resnet.ResNet101_Weights.IMAGENET1K_V1),
}

# Trainable-stage order, from the last stage back to the stem.
_STAGES = ("layer4", "layer3", "layer2", "layer1", "conv1")


def load_backbone_weights(name: str, source: str) -> dict[str, Tensor]:
    """ImageNet weights for a ResNet body: ``"imagenet"`` (downloaded once into the torch hub
    cache) or a path to a ``.safetensors``/``.pth`` state dict."""
    if source != "imagenet":
        return load_state_dict_file(source)
    url = RESNETS[name][1].url
    try:
        return torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=True, weights_only=True
        )
    except OSError as err:  # URLError, HTTPError, socket errors are all OSErrors
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise RuntimeError(
            f"could not download the ImageNet weights for {name} from {url} ({err}). "
            f"Connect to the internet and retry, or copy {url.rsplit('/', 1)[-1]} into {cache}, "
            f"or pass pretrained_backbone=PATH with a local weights file, or "
            f"pretrained_backbone=None to train from random initialisation."
        ) from err


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
    """

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
            raise ValueError(f"unknown ResNet {name!r}; choose one of {sorted(RESNETS)}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {sorted(NORMS)}")
        if not 0 <= trainable_layers <= 5:
            raise ValueError(f"trainable_layers must be in 0..5, got {trainable_layers}")
        net = RESNETS[name][0](weights=None, norm_layer=NORMS[norm])
        if weights is not None:
            weights = {k: v for k, v in weights.items() if not k.startswith("fc.")}
            net.fc = nn.Identity()
            net.load_state_dict(weights)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )
        stage_width = 64 if name in ("resnet18", "resnet34") else 256
        self.channels = tuple(stage_width * 2**i for i in range(4))
        self.strides = (4, 8, 16, 32)
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


class ResNetFPN(nn.Module):
    """ResNet body + FPN: P2..P5 and P6 (max-pooled P5), ``out_channels`` each.

    Attributes:
        out_channels: channels of every output level.
        strides: stride of each output level, finest first.
    """

    def __init__(self, body: ResNetBody, out_channels: int = 256) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(body.channels, out_channels, extra_pool=True)
        self.out_channels = out_channels
        self.strides = (*body.strides, body.strides[-1] * 2)

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.fpn(self.body(x))


def resnet_fpn(
    name: str,
    norm: str,
    trainable_layers: int,
    out_channels: int = 256,
    pretrained: str | None = None,
    checkpointing: bool = False,
) -> ResNetFPN:
    """Build a :class:`ResNetFPN`, optionally from ImageNet weights (see
    :func:`load_backbone_weights`)."""
    weights = load_backbone_weights(name, pretrained) if pretrained else None
    return ResNetFPN(ResNetBody(name, norm, trainable_layers, weights, checkpointing), out_channels)
