"""A faster CPU model for inference with the same detections: batch norms folded into the
convolutions before them.

A frozen (or eval-mode) batch norm after a convolution is an affine map per channel, so it
can be written into the convolution's weights and bias: ``conv(x) * s + t`` is a convolution
with weights ``w * s`` and bias ``b * s + t``. The detections change only by float rounding.
Folded are the pairs a network declares as ``convN``/``bnN`` (ResNet blocks and stems) and a
convolution followed by a batch norm inside an ``nn.Sequential`` (downsample branches,
MobileNet and CSP blocks); group norms cannot be folded and stay.
"""

from __future__ import annotations

import copy
import re

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

NORMS = (FrozenBatchNorm2d, nn.BatchNorm2d)


def _fold(conv: nn.Conv2d, norm: nn.Module) -> None:
    """Write ``norm`` (eval-mode statistics) into ``conv`` in place."""
    eps = getattr(norm, "eps", 1e-5)
    scale = norm.weight * torch.rsqrt(norm.running_var + eps)
    shift = norm.bias - norm.running_mean * scale
    layout = (
        torch.channels_last
        if conv.weight.is_contiguous(memory_format=torch.channels_last)
        and not conv.weight.is_contiguous()
        else torch.contiguous_format
    )
    weight = (conv.weight * scale.view(-1, 1, 1, 1)).contiguous(memory_format=layout)
    bias = shift if conv.bias is None else conv.bias * scale + shift
    conv.weight = nn.Parameter(weight.detach(), requires_grad=False)
    conv.bias = nn.Parameter(bias.detach(), requires_grad=False)


def _foldable(conv: object, norm: object) -> bool:
    if not isinstance(conv, nn.Conv2d) or not isinstance(norm, NORMS):
        return False
    if isinstance(norm, nn.BatchNorm2d) and (norm.training or norm.running_var is None):
        return False
    return norm.weight is not None and conv.out_channels == norm.weight.numel()


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every recognised conv + batch norm pair of ``model`` in place (the norm becomes
    an ``nn.Identity``); returns how many were folded."""
    folded = 0
    for module in list(model.modules()):
        children = dict(module.named_children())
        if isinstance(module, nn.Sequential):
            names = list(children)
            pairs = list(zip(names, names[1:], strict=False))
        else:
            pairs = []
            for name in children:
                match = re.fullmatch(r"conv(\d*)", name)
                if match and f"bn{match.group(1)}" in children:
                    pairs.append((name, f"bn{match.group(1)}"))
        for conv_name, norm_name in pairs:
            conv, norm = children[conv_name], children[norm_name]
            if _foldable(conv, norm):
                _fold(conv, norm)
                setattr(module, norm_name, nn.Identity())
                children[norm_name] = module.get_submodule(norm_name)
                folded += 1
    return folded


@torch.no_grad()
def optimize(model: nn.Module, copy_model: bool = True) -> nn.Module:
    """The exact fast version of an already-built detector, for inference: a copy (or, with
    ``copy_model=False``, the model itself) in eval mode with its batch norms folded.
    Detections equal the original's up to float rounding. Not for training or saving: the
    folded model has no batch-norm weights. ``frcnn predict`` and ``eval`` use it."""
    fast = (copy.deepcopy(model) if copy_model else model).eval()
    fold_batch_norms(fast)
    for p in fast.parameters():
        p.requires_grad_(False)
    fast.optimized = True
    return fast
