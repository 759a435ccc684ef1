"""Named model configurations and the builder that turns a configuration into a detector."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InputError, InputTypeError
from . import backbones, catalog, necks  # noqa: F401 (importing registers them)
from .backbones.base import BACKBONES
from .detector import FasterRCNN
from .features import BodyWithNeck, build_features
from .proposals.anchors import AnchorGenerator
from .proposals.rpn import RegionProposalNetwork, RPNHead
from .registry import MODELS
from .roi.box_head import FastRCNNPredictor, build_box_head
from .roi.pooler import MultiScaleRoIAlign
from .roi.roi_heads import RoIHeads
from .transform import ImageTransform


@dataclass
class ModelConfig:
    """Everything needed to rebuild a detector. Defaults are torchvision's
    ``fasterrcnn_resnet50_fpn``; keyword names follow torchvision where the concept is the same.

    ``norm`` and ``trainable_backbone_layers`` left as None resolve like torchvision's: frozen
    BatchNorm and 3 trainable stages with a pretrained backbone, BatchNorm and all 5 stages
    without one. Anchor ``aspect_ratios`` are height / width.
    """

    name: str = "resnet50_fpn"
    num_classes: int = 91
    backbone: str = "resnet50"
    # A registered neck over the backbone's declared levels.
    neck: str = "fpn"
    # Max-pooled levels the neck adds on top (None: what the backbone declares).
    extra_levels: int | None = None
    pretrained_backbone: str | None = None
    norm: str | None = None
    trainable_backbone_layers: int | None = None
    fpn_channels: int = 256
    channels_last: bool = True
    gradient_checkpointing: bool = False
    # Attention on each pyramid level: none, cbam (channel then spatial) or spatial.
    attention: str = "none"
    # Image transform
    min_size: int | tuple[int, ...] = 800
    max_size: int = 1333
    fixed_size: tuple[int, int] | None = None
    image_mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    image_std: tuple[float, ...] = (0.229, 0.224, 0.225)
    size_divisible: int = 32
    # Anchors and RPN
    anchor_sizes: tuple[tuple[float, ...], ...] = ((32,), (64,), (128,), (256,), (512,))
    aspect_ratios: tuple[tuple[float, ...], ...] = ((0.5, 1.0, 2.0),) * 5
    rpn_pre_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_test: int = 1000
    rpn_nms_thresh: float = 0.7
    rpn_fg_iou_thresh: float = 0.7
    rpn_bg_iou_thresh: float = 0.3
    rpn_batch_size_per_image: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_score_thresh: float = 0.0
    rpn_min_size: float = 1e-3
    # Shared 3x3 convs of the RPN head (torchvision's v2 model has 2).
    rpn_conv_depth: int = 1
    # RoI heads
    roi_output_size: int = 7
    roi_sampling_ratio: int = 2
    # 2mlp: two fully connected layers; 4conv1fc: four conv + BatchNorm blocks and one (v2).
    box_head: str = "2mlp"
    representation_size: int = 1024
    box_score_thresh: float = 0.05
    box_nms_thresh: float = 0.5
    box_detections_per_img: int = 100
    box_fg_iou_thresh: float = 0.5
    box_bg_iou_thresh: float = 0.5
    box_batch_size_per_image: int = 512
    box_positive_fraction: float = 0.25
    bbox_reg_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    class_weights: tuple[float, ...] | None = None
    # none: plain NMS; mean: each NMS cluster merged into its score-weighted mean box.
    box_merge: str = "none"
    # Class indices never reported (the ids COCO never used, in torchvision's COCO models).
    placeholder_classes: tuple[int, ...] = ()
    # Starting from COCO weights: classes named like a COCO category start from its rows.
    keep_coco_classes: bool = True

    def resolved(self) -> ModelConfig:
        """A copy with the pretrained-dependent defaults filled in."""
        pretrained = self.pretrained_backbone is not None
        norm = self.norm or ("frozen_bn" if pretrained else "bn")
        layers = self.trainable_backbone_layers
        if layers is None:
            layers = 3 if pretrained else BACKBONES.get(self.backbone).max_trainable_layers
        return dataclasses.replace(self, norm=norm, trainable_backbone_layers=layers)


# Largest sensible values of size-like options; a forged file must not allocate terabytes.
_LIMITS = {
    "num_classes": 100_000,
    "fpn_channels": 8192,
    "representation_size": 65_536,
    "roi_output_size": 64,
    "min_size": 16_384,
    "max_size": 16_384,
    "size_divisible": 1024,
    "trainable_backbone_layers": 16,
    "rpn_conv_depth": 16,
}


def check_config_values(config: dict, path: object) -> None:
    """Types and ranges of a model configuration (a stored one, or build options), checked
    before anything is built; ``path`` names where it came from.

    Raises:
        ValueError: naming the key and the value.
    """
    defaults = ModelConfig()
    for key, value in config.items():
        default = getattr(defaults, key)
        if value is None or default is None:
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):  # min_size may also be a list of sizes
            values = value if isinstance(value, (list, tuple)) and key == "min_size" else [value]
            limit = _LIMITS.get(key, 10_000_000)
            ok = all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= limit for v in values
            )
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(default, str):
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, (list, tuple))
        if not ok:
            raise InputError(f"{path}: model configuration {key}={value!r} is not valid")


_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)} - {"name", "num_classes"}


def model_config(name: str, num_classes: int, **overrides: Any) -> ModelConfig:
    """The resolved :class:`ModelConfig` of a registered model with overrides applied.

    Raises:
        ValueError: unknown model name. TypeError: unknown override key (with suggestions).
    """
    defaults = MODELS.get(name)
    for key in overrides:
        if key not in _FIELDS:
            hint = difflib.get_close_matches(key, _FIELDS, n=1)
            extra = f" Did you mean {hint[0]!r}?" if hint else ""
            raise InputTypeError(f"build_model: unknown option {key!r}.{extra}")
    if num_classes < 2:
        raise InputError(f"num_classes counts background too and must be >= 2, got {num_classes}")
    check_config_values(overrides, "build options (model.args)")
    return ModelConfig(name=name, num_classes=num_classes, **{**defaults, **overrides}).resolved()


def build_model(name: str, num_classes: int, **overrides: Any) -> FasterRCNN:
    """Build a registered detector.

    Args:
        name: one of :data:`MODELS` (``resnet50_fpn``, ``resnet18_fpn`` ...).
        num_classes: classes including background.
        **overrides: any :class:`ModelConfig` field, e.g. ``min_size=512``,
            ``box_score_thresh=0.3``, ``pretrained_backbone="imagenet"``.

    Returns:
        A :class:`~frcnn.detector.FasterRCNN` in training mode, with ``model.config`` set.
    """
    return build_from_config(model_config(name, num_classes, **overrides))


def build_from_config(cfg: ModelConfig) -> FasterRCNN:
    """Build a detector from a :class:`ModelConfig`: the registered backbone and neck, then the
    RPN and RoI heads sized from the levels the neck declares."""
    cfg = cfg.resolved()
    features = build_features(
        cfg.backbone,
        cfg.neck,
        cfg.norm,
        cfg.trainable_backbone_layers,
        cfg.fpn_channels,
        cfg.pretrained_backbone,
        cfg.gradient_checkpointing,
        cfg.extra_levels,
        cfg.attention,
    )
    transform = ImageTransform(
        cfg.min_size,
        cfg.max_size,
        cfg.image_mean,
        cfg.image_std,
        cfg.size_divisible,
        cfg.fixed_size,
    )
    model = FasterRCNN(
        transform,
        features,
        _build_rpn(cfg, features),
        _build_roi_heads(cfg, features),
        cfg.num_classes,
        cfg.channels_last,
    )
    model.config = dataclasses.asdict(cfg)
    return model


def _build_rpn(cfg: ModelConfig, features: BodyWithNeck) -> RegionProposalNetwork:
    """Anchors on every declared level; one head shared by all levels."""
    if len(cfg.anchor_sizes) != len(features.levels):
        raise InputError(
            f"anchor_sizes has {len(cfg.anchor_sizes)} levels but the {cfg.backbone} {cfg.neck} "
            f"has {len(features.levels)} (strides {features.strides})"
        )
    anchor_generator = AnchorGenerator(cfg.anchor_sizes, cfg.aspect_ratios)
    per_location = set(anchor_generator.num_anchors_per_location())
    if len(per_location) != 1:
        raise InputError(
            "every pyramid level needs the same number of anchors per location "
            f"(len(sizes) * len(aspect_ratios)), got {anchor_generator.num_anchors_per_location()}"
        )
    return RegionProposalNetwork(
        anchor_generator,
        RPNHead(features.out_channels, per_location.pop(), cfg.rpn_conv_depth),
        fg_iou_thresh=cfg.rpn_fg_iou_thresh,
        bg_iou_thresh=cfg.rpn_bg_iou_thresh,
        batch_size_per_image=cfg.rpn_batch_size_per_image,
        positive_fraction=cfg.rpn_positive_fraction,
        pre_nms_top_n=(cfg.rpn_pre_nms_top_n_train, cfg.rpn_pre_nms_top_n_test),
        post_nms_top_n=(cfg.rpn_post_nms_top_n_train, cfg.rpn_post_nms_top_n_test),
        nms_thresh=cfg.rpn_nms_thresh,
        min_size=cfg.rpn_min_size,
        score_thresh=cfg.rpn_score_thresh,
    )


def _build_roi_heads(cfg: ModelConfig, features: BodyWithNeck) -> RoIHeads:
    """RoIs pooled from the levels the neck marks ``pooled`` (P2-P5 for an FPN, not P6)."""
    pooled = [(i, lv.stride) for i, lv in enumerate(features.levels) if lv.pooled]
    if not pooled:
        raise InputError(f"the {cfg.neck} neck marks no level for RoI pooling")
    pooler = MultiScaleRoIAlign(
        [s for _, s in pooled],
        cfg.roi_output_size,
        cfg.roi_sampling_ratio,
        levels=[i for i, _ in pooled],
    )
    return RoIHeads(
        pooler,
        build_box_head(
            cfg.box_head, features.out_channels, cfg.roi_output_size, cfg.representation_size
        ),
        FastRCNNPredictor(cfg.representation_size, cfg.num_classes),
        fg_iou_thresh=cfg.box_fg_iou_thresh,
        bg_iou_thresh=cfg.box_bg_iou_thresh,
        batch_size_per_image=cfg.box_batch_size_per_image,
        positive_fraction=cfg.box_positive_fraction,
        bbox_reg_weights=cfg.bbox_reg_weights,
        score_thresh=cfg.box_score_thresh,
        nms_thresh=cfg.box_nms_thresh,
        detections_per_img=cfg.box_detections_per_img,
        class_weights=_class_weights(cfg),
        merge=cfg.box_merge,
        placeholder_classes=cfg.placeholder_classes,
    )


def _class_weights(cfg: ModelConfig) -> torch.Tensor | None:
    if cfg.class_weights is None:
        return None
    if len(cfg.class_weights) != cfg.num_classes:
        raise InputError(
            f"class_weights has {len(cfg.class_weights)} entries but the model has "
            f"{cfg.num_classes} classes (background first)"
        )
    return torch.tensor(cfg.class_weights, dtype=torch.float32)
