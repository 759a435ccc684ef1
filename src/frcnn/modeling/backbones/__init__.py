"""Backbones by name. Each module here registers its backbones with :data:`BACKBONES` when
imported; import a new module below to make its backbones buildable by name."""

# noqa: F401 below: importing registers mobilenet_v3_large, resnet18/34/50/101,
# efficientnet_b3, swin_t, swin_s (timm is imported only when one of those is built),
# cspdarknet53, cspmirrornet
from . import csp, mobilenet, resnet, timm_body  # noqa: F401
from .base import BACKBONES, Backbone, BackboneSpec, FeatureLevel, check_levels

__all__ = ["BACKBONES", "Backbone", "BackboneSpec", "FeatureLevel", "check_levels"]
