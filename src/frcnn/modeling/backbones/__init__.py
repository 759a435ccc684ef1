"""Backbones by name. Each module here registers its backbones with :data:`BACKBONES` when
imported; import a new module below to make its backbones buildable by name."""

from . import mobilenet, resnet  # noqa: F401 (registers mobilenet_v3_large, resnet18/34/50/101)
from .base import BACKBONES, Backbone, BackboneSpec, FeatureLevel, check_levels

__all__ = ["BACKBONES", "Backbone", "BackboneSpec", "FeatureLevel", "check_levels"]
