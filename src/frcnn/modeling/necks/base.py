"""The neck contract and registry.

A neck is built by ``build(levels, out_channels, extra_levels)`` from the backbone's declared
:class:`~frcnn.modeling.backbones.base.FeatureLevel` tuple. It takes the backbone's list of
feature maps and returns its own list, finest first, and declares it in ``levels`` (every
level with the same channels, so one RPN head serves them all; ``pooled`` marks the levels
RoIs are pooled from).

The detector holds the body and the neck as ``backbone.body`` and ``backbone.<neck name>``
(``backbone.fpn`` for the FPN), so state-dict keys name the neck that made them.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..registry import Registry

NECKS: Registry[Callable[..., nn.Module]] = Registry("neck")
