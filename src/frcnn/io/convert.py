"""Weights from torchvision's Faster R-CNN, renamed onto frcnn's modules."""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from ..errors import InputError
from ..modeling.builder import MODELS, build_model
from ..modeling.detector import FasterRCNN

# (torchvision pattern, frcnn replacement), tried in order; the first match wins.
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), r)
    for p, r in [
        (r"^backbone\.body\.(.+)$", r"backbone.body.\1"),
        (
            r"^backbone\.fpn\.inner_blocks\.(\d+)(?:\.0)?\.(weight|bias)$",
            r"backbone.fpn.lateral.\1.\2",
        ),
        (
            r"^backbone\.fpn\.layer_blocks\.(\d+)(?:\.0)?\.(weight|bias)$",
            r"backbone.fpn.output.\1.\2",
        ),
        # torchvision >= 0.13 wraps the RPN conv in Sequential(Conv2dNormActivation(...)).
        (r"^rpn\.head\.conv(?:\.0\.0)?\.(weight|bias)$", r"rpn.head.conv.\1"),
        (r"^rpn\.head\.cls_logits\.(weight|bias)$", r"rpn.head.objectness.\1"),
        (r"^rpn\.head\.bbox_pred\.(weight|bias)$", r"rpn.head.deltas.\1"),
        (r"^roi_heads\.box_head\.fc6\.(weight|bias)$", r"roi_heads.box_head.fc1.\1"),
        (r"^roi_heads\.box_head\.fc7\.(weight|bias)$", r"roi_heads.box_head.fc2.\1"),
        (
            r"^roi_heads\.box_predictor\.(cls_score|bbox_pred)\.(weight|bias)$",
            r"roi_heads.predictor.\1.\2",
        ),
    ]
]

# torchvision backbones by the width of layer4's last conv and block count of layer3.
_RESNETS = {
    (512, 2): "resnet18",
    (512, 6): "resnet34",
    (2048, 6): "resnet50",
    (2048, 23): "resnet101",
}


def from_torchvision(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename a torchvision ``fasterrcnn_resnet*_fpn`` state dict to frcnn's parameter names.

    Raises:
        ValueError: keys that belong to no known torchvision Faster R-CNN module (e.g. a
            Mask R-CNN's mask head), all listed.
    """
    out: dict[str, Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        for pattern, replacement in _RULES:
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
    if name is not None and MODELS.get(name)["backbone"] != MODELS.get(found)["backbone"]:
        raise InputError(f"these weights are a {found}, not a {name}")
    overrides.setdefault("norm", "frozen_bn")
    overrides.setdefault("trainable_backbone_layers", 3)
    model = build_model(name or found, num_classes, **overrides)
    model.load_state_dict(state)
    return model


def _model_name(state: dict[str, Tensor]) -> str:
    """The frcnn model a converted torchvision state dict belongs to."""
    if "backbone.body.16.0.weight" in state:
        return "mobilenet_v3_large_fpn"
    width = state["backbone.fpn.lateral.3.weight"].shape[1]
    blocks = len({k.split(".")[3] for k in state if k.startswith("backbone.body.layer3.")})
    backbone = _RESNETS.get((width, blocks))
    if backbone is None:
        raise InputError(
            f"unrecognised ResNet backbone (layer4 width {width}, layer3 {blocks} blocks)"
        )
    return f"{backbone}_fpn"
