"""CSP backbones: CSPDarknet53 (YOLOv4's body) and CSPMirrorNet, a "mirror" variant
whose deep halves run as siamese pairs on a feature map and its mirror image. Both return the outputs of stages 2-5 (strides 4, 8, 16, 32) for the
``pan`` neck (SPP, FPN top-down, PAN bottom-up) or any other neck.

No ImageNet weights are published for either; train from scratch, or pretrain the body as a
classifier with ``frcnn pretrain-backbone`` and pass its file as ``pretrained_backbone``.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ...errors import InputError
from ..layers.conv import ConvNormAct
from ..layers.norm import norm_layer
from .base import BACKBONES, BackboneSpec, FeatureLevel, check_levels
from .weights import load_matching

# Channels of the five stages (strides 2, 4, 8, 16, 32) after a 32-channel stem.
WIDTHS = (64, 128, 256, 512, 1024)


class ResidualBlock(nn.Module):
    """Darknet's residual unit: ``x + conv3x3(conv1x1(x))``."""

    def __init__(self, channels: int, norm) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(channels, channels, 1, norm)
        self.conv2 = ConvNormAct(channels, channels, 3, norm)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))


class CSPStage(nn.Module):
    """A Cross Stage Partial stage (Wang et al., CVPR-W 2020): a stride-2 3x3 conv, then two
    1x1 convs split the map into halves; one half goes through the residual blocks, the
    other skips them; a 1x1 transition fuses the two. Half the channels pay for the deep
    path, and gradients reach the stage input by two routes.
    """

    def __init__(self, in_channels: int, out_channels: int, blocks: int, norm) -> None:
        super().__init__()
        half = out_channels // 2
        self.down = ConvNormAct(in_channels, out_channels, 3, norm, stride=2)
        self.shortcut = ConvNormAct(out_channels, half, 1, norm)
        self.main = ConvNormAct(out_channels, half, 1, norm)
        self.blocks = nn.Sequential(*(ResidualBlock(half, norm) for _ in range(blocks)))
        self.post = ConvNormAct(half, half, 1, norm)
        self.transition = ConvNormAct(2 * half, out_channels, 1, norm)

    def forward(self, x: Tensor, shared: Tensor | None = None) -> Tensor:
        """``shared`` is ignored (the mirror stage uses it)."""
        x = self.down(x)
        deep = self.post(self.blocks(self.main(x)))
        return self.transition(torch.cat([deep, self.shortcut(x)], 1))


class MirrorCSPStage(CSPStage):
    """A CSP stage whose deep half runs as a siamese pair on a mirrored, widened map.

    What it does, after the stride-2 conv and the CSP split:

    1. **Mirror and widen**: the deep half ``m`` (``[N, C/2, H, W]``) is placed beside its
       horizontal mirror, ``[m | flip(m)]`` (``[N, C/2, H, 2W]``).
    2. **Siamese branches with shared weights**: one set of residual blocks runs over the
       widened map, so the feature and its mirror image go through the same weights (a
       siamese pair computed in one call); at the seam each border sees its own reflection
       instead of zero padding.
    3. **Pooling mixing**: the right half is flipped back into register with the left, and
       the pair is fused by an element-wise maximum and a mean: what either orientation
       found, and what both agree on.
    4. **Early features shared across sections**: the output of the first stage (stride 2)
       is average-pooled to this stage's size and joins the fusion, so fine, early detail
       reaches every later section without another conv.
    5. **Permutation mixing**: the concatenation ``[shortcut, max, mean, early]`` is
       channel-shuffled (two groups interleaved) and fused by a 1x1 conv with two groups:
       half the parameters and multiply-adds of a dense 1x1, while the shuffle lets every
       output group see every input source.

    Why: the representation entering the transition is 1.5x as wide as CSP's (plus the
    early features) for the price of the blocks only, whose weights are shared by both
    branches; orientation-robust features come from the architecture instead of flip
    augmentation alone. The mirror network uses half of CSPDarknet53's residual blocks per
    stage, so the two cost about the same compute with fewer parameters; whether the idea
    pays is measured by ``benchmarks/models.py`` (parameters, GFLOPs, latency, held-out
    mAP after the same training budget), not assumed.

    Args:
        shared_channels: channels of the early features joined in (0: none, stage 1).
    """

    def __init__(
        self, in_channels: int, out_channels: int, blocks: int, norm, shared_channels: int = 0
    ) -> None:
        super().__init__(in_channels, out_channels, blocks, norm)
        half = out_channels // 2
        self.transition = ConvNormAct(3 * half + shared_channels, out_channels, 1, norm, groups=2)

    def forward(self, x: Tensor, shared: Tensor | None = None) -> Tensor:
        x = self.down(x)
        main = self.main(x)
        width = main.shape[-1]
        pair = self.post(self.blocks(torch.cat([main, main.flip(-1)], dim=-1)))
        left, right = pair[..., :width], pair[..., width:].flip(-1)
        parts = [self.shortcut(x), torch.maximum(left, right), (left + right) * 0.5]
        if shared is not None:
            parts.append(F.adaptive_avg_pool2d(shared, x.shape[-2:]))
        return self.transition(channel_shuffle(torch.cat(parts, 1), 2))


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave ``groups`` equal channel groups (ShuffleNet): output channel
    ``i * groups + g`` is input channel ``g * k + i``, for ``k = C / groups``."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class CSPBody(nn.Module):
    """A 32-channel stem and five CSP stages (64 .. 1024 channels, strides 2 .. 32).

    Args:
        depths: residual blocks per stage.
        mirror: build :class:`MirrorCSPStage` stages that share the first stage's output.
        norm: ``bn``, ``frozen_bn``, ``gn`` or ``syncbn``.
        trainable_layers: stages receiving gradients, counted from stage 5 back (5: all,
            the stem counted with stage 1).
        weights: optional state dict with this body's keys (from ``frcnn pretrain-backbone``).
        checkpointing: in training, recompute stages 4 and 5 in the backward pass.

    Attributes:
        levels: outputs of stages 2-5: ``c2`` .. ``c5`` at strides 4, 8, 16, 32.
        extra_levels: 1, a max-pooled P6 on top of the neck.
    """

    extra_levels = 1

    def __init__(
        self,
        depths: tuple[int, ...],
        mirror: bool = False,
        norm: str = "bn",
        trainable_layers: int = 5,
        weights: dict[str, Tensor] | None = None,
        checkpointing: bool = False,
        name: str = "csp",
    ) -> None:
        super().__init__()
        if not 0 <= trainable_layers <= len(WIDTHS):
            raise InputError(f"trainable_layers must be in 0..5, got {trainable_layers}")
        make = norm_layer(norm)
        self.stem = ConvNormAct(3, 32, 3, make)
        stages, in_channels = [], 32
        for i, (width, depth) in enumerate(zip(WIDTHS, depths, strict=True)):
            if mirror:
                shared = WIDTHS[0] if i > 0 else 0
                stages.append(MirrorCSPStage(in_channels, width, depth, make, shared))
            else:
                stages.append(CSPStage(in_channels, width, depth, make))
            in_channels = width
        self.stages = nn.ModuleList(stages)
        self.mirror, self.checkpointing = mirror, checkpointing
        self.levels = check_levels(
            [FeatureLevel(f"c{i + 1}", WIDTHS[i], 2 ** (i + 1)) for i in range(1, 5)], name
        )
        if weights is not None:
            load_matching(self, weights, f"{name} backbone weights")
        frozen = len(WIDTHS) - trainable_layers  # stages 1.. frozen first, stem with stage 1
        for i, stage in enumerate(self.stages):
            stage.requires_grad_(i >= frozen)
        self.stem.requires_grad_(frozen == 0)

    def forward(self, x: Tensor) -> list[Tensor]:
        """FloatTensor[N, 3, H, W] -> [C2, C3, C4, C5] at strides 4, 8, 16, 32."""
        x = self.stages[0](self.stem(x))
        shared = x if self.mirror else None
        late = self.checkpointing and self.training and torch.is_grad_enabled()
        outputs = []
        for i, stage in enumerate(self.stages[1:], start=1):
            x = (
                checkpoint(stage, x, shared, use_reentrant=False)
                if late and i >= 3
                else stage(x, shared)
            )
            outputs.append(x)
        return outputs


BACKBONES.register(
    "cspdarknet53",
    BackboneSpec(partial(CSPBody, (1, 2, 8, 8, 4), False, name="cspdarknet53"), len(WIDTHS)),
)
BACKBONES.register(
    "cspmirrornet",
    BackboneSpec(partial(CSPBody, (1, 1, 4, 4, 2), True, name="cspmirrornet"), len(WIDTHS)),
)
