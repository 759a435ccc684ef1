"""Backbones from timm (PyTorch Image Models): EfficientNet-B3 and Swin Transformer T/S.

timm builds each network as a ``features_only`` model returning its stage outputs at strides
4, 8, 16 and 32; Swin's channels-last (NHWC) outputs are permuted to the contract's NCHW. Swin
is built with ``strict_img_size=False``: its windows are padded and its shifted-window masks
computed for the actual input, so any size the transform produces works, not only 224.

ImageNet weights (``pretrained_backbone: imagenet``) come from timm's Hugging Face hub
entries; a local file may hold either a timm classification checkpoint (``layers.0.*``,
``blocks.1.*``, the head is ignored) or the body's own keys (``layers_0.*``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import partial

from torch import Tensor, nn

from ...errors import InputError, MissingDependencyError
from ..layers.norm import group_count, norm_layer
from .base import BACKBONES, BackboneSpec, FeatureLevel, check_levels
from .weights import load_matching


@dataclass(frozen=True)
class TimmModel:
    """How to build one timm network as a frcnn body.

    Attributes:
        timm_name: the timm model name (without a pretrained tag).
        out_indices: timm feature indices giving strides 4, 8, 16, 32.
        stages: module-name prefixes of each trainable stage, from the output back to the stem.
        channels_last: the features come out NHWC (Swin) and are permuted to NCHW.
        kwargs: extra ``timm.create_model`` arguments.
        classifier: key prefixes of the classification model that the body does not have
            (head, final norm), left out of a checkpoint before loading.
    """

    timm_name: str
    out_indices: tuple[int, ...]
    stages: tuple[tuple[str, ...], ...]
    channels_last: bool = False
    kwargs: tuple[tuple[str, object], ...] = ()
    classifier: tuple[str, ...] = ("head.", "norm.")


def _swin(timm_name: str) -> TimmModel:
    stages = (("layers_3",), ("layers_2",), ("layers_1",), ("layers_0",), ("patch_embed",))
    return TimmModel(
        timm_name, (0, 1, 2, 3), stages, channels_last=True, kwargs=(("strict_img_size", False),)
    )


TIMM_MODELS = {
    "efficientnet_b3": TimmModel(
        "efficientnet_b3",
        (1, 2, 3, 4),
        (
            ("blocks.5", "blocks.6"),
            ("blocks.3", "blocks.4"),
            ("blocks.2",),
            ("blocks.1",),
            ("conv_stem", "bn1", "blocks.0"),
        ),
        classifier=("conv_head.", "bn2.", "classifier."),
    ),
    # strict_img_size=False: windows padded, shifted-window masks made for the actual size
    "swin_t": _swin("swin_tiny_patch4_window7_224"),
    "swin_s": _swin("swin_small_patch4_window7_224"),
}


def _timm():
    """timm, imported when a timm backbone is built (not at ``import frcnn``)."""
    try:
        import timm
    except ImportError as err:  # a dependency, but say what to do if it was left out
        raise MissingDependencyError("this backbone needs timm: pip install timm") from err
    return timm


class TimmBody(nn.Module):
    """A timm ``features_only`` network honouring the backbone contract.

    Args:
        name: a key of :data:`TIMM_MODELS` (``efficientnet_b3``, ``swin_t``, ``swin_s``).
        norm: for BatchNorm networks (EfficientNet) ``frozen_bn`` (statistics and affine fixed),
            ``bn``, ``syncbn`` or ``gn`` (GroupNorm with ``gcd(32, C)`` groups, the activation
            kept). Swin normalises with LayerNorm whatever ``norm`` says; ``frozen_bn``
            freezes its affine parameters, as for fine-tuning a BatchNorm network.
        trainable_layers: how many of the 5 stages, counted from the output back to the stem,
            receive gradients.
        weights: optional state dict (a timm classification checkpoint or this body's keys).
        checkpointing: recompute stage activations in the backward pass (timm's gradient
            checkpointing).

    Attributes:
        levels: the four stage outputs at strides 4, 8, 16, 32 (``c2`` .. ``c5``).
        extra_levels: 1, the max-pooled P6 the FPN adds.
    """

    extra_levels = 1

    def __init__(
        self,
        name: str,
        norm: str = "frozen_bn",
        trainable_layers: int = 3,
        weights: dict[str, Tensor] | None = None,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        spec = TIMM_MODELS[name]
        if not 0 <= trainable_layers <= len(spec.stages):
            raise InputError(f"trainable_layers must be in 0..5, got {trainable_layers}")
        self.model = _timm().create_model(
            spec.timm_name,
            pretrained=False,
            features_only=True,
            out_indices=spec.out_indices,
            **dict(spec.kwargs),
        )
        if weights is not None:
            body = {k: v for k, v in weights.items() if not k.startswith(spec.classifier)}
            load_matching(self.model, _body_keys(self.model, body), f"{name} backbone weights")
        _set_norm(self.model, norm)
        self.channels_last_out = spec.channels_last
        info = self.model.feature_info
        self.levels = check_levels(
            [
                FeatureLevel(f"c{int(math.log2(s))}", c, s)
                for c, s in zip(info.channels(), info.reduction(), strict=True)
            ],
            name,
        )
        trainable = tuple(p for stage in spec.stages[:trainable_layers] for p in stage)
        for param_name, param in self.model.named_parameters():
            if not param_name.startswith(trainable) or not trainable:
                param.requires_grad_(False)
        if norm == "frozen_bn":  # LayerNorms (Swin) stay fixed like frozen BatchNorms
            for module in self.model.modules():
                if isinstance(module, nn.LayerNorm):
                    module.requires_grad_(False)
        self.model.set_grad_checkpointing(checkpointing)

    def forward(self, x: Tensor) -> list[Tensor]:
        """FloatTensor[N, 3, H, W] -> four NCHW maps at strides 4, 8, 16, 32."""
        features = self.model(x)
        if self.channels_last_out:  # NHWC -> NCHW view (memory stays channels-last)
            features = [f.permute(0, 3, 1, 2) for f in features]
        return features


def _normalised(key: str) -> str:
    """``layers_0.blocks`` and ``layers.0.blocks`` name the same tensor (timm's feature
    wrapper flattens ``layers.0`` into ``layers_0``)."""
    return re.sub(r"_(\d+)(?=\.)", r".\1", key)


def _body_keys(model: nn.Module, weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """``weights`` renamed to ``model``'s keys where a name differs only by timm's feature
    wrapper flattening or by this body's ``model.`` prefix (a file of the body's own state
    dict, as ``frcnn pretrain-backbone`` writes); other keys pass unchanged (and are
    reported as unexpected)."""
    own = {_normalised(k): k for k in model.state_dict()}
    return {own.get(_normalised(k.removeprefix("model.")), k): v for k, v in weights.items()}


def _set_norm(model: nn.Module, norm: str) -> None:
    """Replace the BatchNorm layers as ``norm`` asks (see :class:`TimmBody`)."""
    timm = _timm()
    make = norm_layer(norm)  # an unknown name is an error naming the choices
    if norm in ("bn", "syncbn"):
        return
    if norm == "frozen_bn":
        timm.layers.freeze_batch_norm_2d(model)
        return
    for parent in list(model.modules()):  # gn
        for child_name, child in parent.named_children():
            if isinstance(child, timm.layers.BatchNormAct2d):
                channels = child.num_features
                group = timm.layers.GroupNormAct(channels, group_count(channels), apply_act=False)
                group.act, group.drop = child.act, child.drop
                setattr(parent, child_name, group)
            elif isinstance(child, nn.BatchNorm2d):
                setattr(parent, child_name, make(child.num_features))


def fetch_imagenet(name: str) -> dict[str, Tensor]:
    """timm's ImageNet classification weights for ``name`` (downloaded from the Hugging Face
    hub into its cache on first use)."""
    model = _timm().create_model(TIMM_MODELS[name].timm_name, pretrained=True)
    return {k: v.detach() for k, v in model.state_dict().items()}


for _name, _spec in TIMM_MODELS.items():
    BACKBONES.register(
        _name,
        BackboneSpec(
            partial(TimmBody, _name),
            len(_spec.stages),
            fetch_pretrained=partial(fetch_imagenet, _name),
            pretrained_source=f"timm/{_spec.timm_name} on the Hugging Face hub",
        ),
    )

__all__ = ["TIMM_MODELS", "TimmBody", "fetch_imagenet"]
