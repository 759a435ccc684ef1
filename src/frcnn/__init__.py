"""frcnn: train, evaluate and use Faster R-CNN object detectors on your own data.

The public names load on first use (``frcnn.train``, ``frcnn.load_model`` ...), so that
``import frcnn`` and ``frcnn --help`` do not pay for torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# Public name -> the module that defines it.
_LAZY = {
    "calibrate": ".api",
    "evaluate": ".api",
    "predict": ".api",
    "train": ".api",
    "TrainConfig": ".config",
    "load_config": ".config",
    "Callback": ".engine.hooks",
    "Hook": ".engine.hooks",
    "load_model": ".io.model_file",
    "save_model": ".io.model_file",
    "BACKBONES": ".modeling.backbones",
    "BackboneSpec": ".modeling.backbones",
    "FeatureLevel": ".modeling.backbones",
    "norm_layer": ".modeling.layers.norm",
    "MODELS": ".modeling.builder",
    "ModelConfig": ".modeling.builder",
    "build_model": ".api",
    "FasterRCNN": ".modeling.detector",
    "NECKS": ".modeling.necks",
    "PretrainConfig": ".pretrain.loop",
    "pretrain_backbone": ".pretrain.loop",
    "InferenceOptions": ".inference.options",
    "MergeOptions": ".inference.options",
    "EvalOptions": ".evaluation.report",
    "load_detector": ".inference.compose",
    "predict_dataset": ".inference.predict",
    "MergedDetector": ".inference.ensemble",
    "ModelDetector": ".inference.detectors",
    "TiledDetector": ".inference.detectors",
    "CalibratedDetector": ".inference.calibrated",
    "run_kfold": ".experiments.kfold",
    "find_label_issues": ".experiments.label_issues",
    "run_tune": ".experiments.tune",
    "export_model": ".deploy.export",
    "optimize": ".deploy.optimize",
    "read_dataset": ".data.sources",
    "read_image": ".data.images",
    "check_dataset": ".data.check",
    "write_dataset": ".data.write",
    "write_synth": ".data.synth",
    "fit_anchors": ".data.anchor_fit",
    "explain": ".explainer.run",
    "trace_stages": ".explainer.trace",
}

__all__ = [
    "check_dataset",
    "fit_anchors",
    "read_dataset",
    "read_image",
    "write_dataset",
    "write_synth",
    "BACKBONES",
    "MODELS",
    "NECKS",
    "BackboneSpec",
    "CalibratedDetector",
    "Callback",
    "EvalOptions",
    "FasterRCNN",
    "FeatureLevel",
    "Hook",
    "InferenceOptions",
    "MergeOptions",
    "MergedDetector",
    "ModelConfig",
    "ModelDetector",
    "PretrainConfig",
    "TiledDetector",
    "TrainConfig",
    "__version__",
    "build_model",
    "calibrate",
    "evaluate",
    "explain",
    "export_model",
    "find_label_issues",
    "load_config",
    "load_detector",
    "load_model",
    "norm_layer",
    "optimize",
    "predict",
    "predict_dataset",
    "pretrain_backbone",
    "run_kfold",
    "run_tune",
    "save_model",
    "trace_stages",
    "train",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'frcnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # for type checkers and IDEs: the names as plain imports
    from .api import build_model, calibrate, evaluate, predict, train
    from .config import TrainConfig, load_config
    from .data.anchor_fit import fit_anchors
    from .data.check import check_dataset
    from .data.images import read_image
    from .data.sources import read_dataset
    from .data.synth import write_synth
    from .data.write import write_dataset
    from .deploy.export import export_model
    from .deploy.optimize import optimize
    from .engine.hooks import Callback, Hook
    from .evaluation.report import EvalOptions
    from .experiments.kfold import run_kfold
    from .experiments.label_issues import find_label_issues
    from .experiments.tune import run_tune
    from .explainer.run import explain
    from .explainer.trace import trace_stages
    from .inference.calibrated import CalibratedDetector
    from .inference.compose import load_detector
    from .inference.detectors import ModelDetector, TiledDetector
    from .inference.ensemble import MergedDetector
    from .inference.options import InferenceOptions, MergeOptions
    from .inference.predict import predict_dataset
    from .io.model_file import load_model, save_model
    from .modeling.backbones import BACKBONES, BackboneSpec, FeatureLevel
    from .modeling.builder import MODELS, ModelConfig
    from .modeling.detector import FasterRCNN
    from .modeling.layers.norm import norm_layer
    from .modeling.necks import NECKS
    from .pretrain.loop import PretrainConfig, pretrain_backbone
