"""The named models frcnn ships, as plain data: importing this needs no torch, so
``frcnn models`` and argument checks answer at once. A name maps to its
:class:`~frcnn.modeling.builder.ModelConfig` defaults; the backbone and neck they name are
registered by their own modules (:mod:`frcnn.modeling.backbones`, :mod:`~.necks`)."""

from __future__ import annotations

from .registry import MODELS

for _depth in (18, 34, 50, 101):
    MODELS.register(f"resnet{_depth}_fpn", {"backbone": f"resnet{_depth}", "neck": "fpn"})
