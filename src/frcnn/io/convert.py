"""Weights from torchvision's Faster R-CNN, renamed onto frcnn's modules."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from torch import Tensor

from ..errors import InputError
from ..modeling.builder import MODELS, build_model
from ..modeling.detector import FasterRCNN

Rule = tuple[re.Pattern[str], "str | Callable[[re.Match[str]], str]"]


def _rules(pairs: list[tuple[str, object]]) -> list[Rule]:
    return [(re.compile(p), r) for p, r in pairs]  # type: ignore[misc]


def _rpn_conv(match: re.Match[str]) -> str:
    """torchvision's n-th shared RPN conv: the first is ``conv``, the others ``extra_convs``."""
    index = int(match.group(1) or 0)
    where = "conv" if index == 0 else f"extra_convs.{index - 1}"
    return f"rpn.head.{where}.{match.group(2)}"


# (torchvision pattern, frcnn replacement), tried in order; the first match wins.
_COMMON = [
    (r"^backbone\.body\.(.+)$", r"backbone.body.\1"),
    # torchvision >= 0.13 wraps the RPN convs in Sequential(Conv2dNormActivation(...)).
    (r"^rpn\.head\.conv(?:\.(\d+)\.0)?\.(weight|bias)$", _rpn_conv),
    (r"^rpn\.head\.cls_logits\.(weight|bias)$", r"rpn.head.objectness.\1"),
    (r"^rpn\.head\.bbox_pred\.(weight|bias)$", r"rpn.head.deltas.\1"),
    (
        r"^roi_heads\.box_predictor\.(cls_score|bbox_pred)\.(weight|bias)$",
        r"roi_heads.predictor.\1.\2",
    ),
]
# fasterrcnn_resnet*_fpn and the MobileNetV3 models: plain FPN convs, a two-layer MLP head.
_V1_RULES = _rules(
    [
        (
            r"^backbone\.fpn\.inner_blocks\.(\d+)(?:\.0)?\.(weight|bias)$",
            r"backbone.fpn.lateral.\1.\2",
        ),
        (
            r"^backbone\.fpn\.layer_blocks\.(\d+)(?:\.0)?\.(weight|bias)$",
            r"backbone.fpn.output.\1.\2",
        ),
        (r"^roi_heads\.box_head\.fc6\.(weight|bias)$", r"roi_heads.box_head.fc1.\1"),
        (r"^roi_heads\.box_head\.fc7\.(weight|bias)$", r"roi_heads.box_head.fc2.\1"),
        *_COMMON,
    ]
)
# fasterrcnn_resnet50_fpn_v2: conv + BatchNorm pairs in the FPN, four conv blocks (0-3), a
# Flatten (4) and one fully connected layer (5) in the box head.
_V2_RULES = _rules(
    [
        (r"^backbone\.fpn\.inner_blocks\.(\d+)\.([01]\..+)$", r"backbone.fpn_bn.lateral.\1.\2"),
        (r"^backbone\.fpn\.layer_blocks\.(\d+)\.([01]\..+)$", r"backbone.fpn_bn.output.\1.\2"),
        (r"^roi_heads\.box_head\.([0-3])\.([01]\..+)$", r"roi_heads.box_head.convs.\1.\2"),
        (r"^roi_heads\.box_head\.5\.(weight|bias)$", r"roi_heads.box_head.fc.\1"),
        *_COMMON,
    ]
)


def is_torchvision_state(state_dict: dict[str, Tensor]) -> bool:
    """Whether a state dict uses torchvision's Faster R-CNN names (its ``box_predictor``)."""
    return any(k.startswith("roi_heads.box_predictor.") for k in state_dict)


# torchvision backbones by the width of layer4's last conv and block count of layer3.
_RESNETS = {
    (512, 2): "resnet18",
    (512, 6): "resnet34",
    (2048, 6): "resnet50",
    (2048, 23): "resnet101",
}


def from_torchvision(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a torchvision ``fasterrcnn_resnet*_fpn`` (v1 or v2) or
    ``fasterrcnn_mobilenet_v3_large*_fpn`` state dict to frcnn's parameter names.

    Raises:
        ValueError: keys that belong to no known torchvision Faster R-CNN module (e.g. a
            Mask R-CNN's mask head), all listed.
    """
    out: dict[str, Tensor] = {}
    unknown = []
    v2 = any(k.startswith("roi_heads.box_head.0.0.") for k in state_dict)
    for key, value in state_dict.items():
        for pattern, replacement in _V2_RULES if v2 else _V1_RULES:
            if pattern.match(key):
                out[pattern.sub(replacement, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise InputError(f"{len(unknown)} keys are not part of a torchvision Faster R-CNN: {shown}")
    return out


def model_from_torchvision(
    state_dict: dict[str, Tensor], name: str | None = None, **overrides: Any
) -> FasterRCNN:
    """Build the matching frcnn detector and load converted torchvision weights into it.

    The backbone (ResNet depth, or MobileNetV3-Large) and number of classes are read from
    the weights; ``name`` picks among models with the same weights (e.g.
    ``mobilenet_v3_large_320_fpn``); ``overrides`` go to :func:`frcnn.build_model`. The
    backbone uses frozen BatchNorm (as torchvision's pretrained detectors do) unless
    ``norm`` is overridden.

    Raises:
        ValueError: an unrecognised backbone, or a ``name`` whose backbone is another.
    """
    state = from_torchvision(state_dict)
    num_classes = state["roi_heads.predictor.cls_score.weight"].shape[0]
    found = _model_name(state)
    if name is not None and _architecture(name) != _architecture(found):
        raise InputError(f"these weights are a {found}, not a {name}")
    overrides.setdefault("norm", "frozen_bn")
    overrides.setdefault("trainable_backbone_layers", 3)
    model = build_model(name or found, num_classes, **overrides)
    model.load_state_dict(state)
    return model


def _architecture(name: str) -> tuple[object, ...]:
    """What decides whether weights fit a named model: backbone, neck and heads."""
    entry = MODELS.get(name)
    return tuple(entry.get(k) for k in ("backbone", "neck", "box_head", "rpn_conv_depth"))


def _model_name(state: dict[str, Tensor]) -> str:
    """The frcnn model a converted torchvision state dict belongs to."""
    if "backbone.body.16.0.weight" in state:
        return "mobilenet_v3_large_fpn"
    v2 = "backbone.fpn_bn.lateral.3.0.weight" in state
    width = state["backbone.fpn_bn.lateral.3.0.weight" if v2 else "backbone.fpn.lateral.3.weight"]
    blocks = len({k.split(".")[3] for k in state if k.startswith("backbone.body.layer3.")})
    backbone = _RESNETS.get((width.shape[1], blocks))
    if backbone is None:
        raise InputError(
            f"unrecognised ResNet backbone (layer4 width {width.shape[1]}, layer3 {blocks} blocks)"
        )
    if v2 and backbone != "resnet50":
        raise InputError(f"v2 (BatchNorm FPN) weights exist for resnet50 only, not {backbone}")
    return f"{backbone}_fpn_v2" if v2 else f"{backbone}_fpn"
