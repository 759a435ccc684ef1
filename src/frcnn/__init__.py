"""frcnn: train, evaluate and use Faster R-CNN object detectors on your own data."""

from ._version import __version__
from .api import evaluate, predict, train
from .config import TrainConfig, load_config
from .engine.hooks import Callback, Hook
from .io.model_file import load_model, save_model
from .modeling.backbones import BACKBONES, BackboneSpec, FeatureLevel
from .modeling.builder import MODELS, ModelConfig, build_model
from .modeling.detector import FasterRCNN
from .modeling.necks import NECKS

__all__ = [
    "BACKBONES",
    "NECKS",
    "BackboneSpec",
    "Callback",
    "FeatureLevel",
    "Hook",
    "MODELS",
    "FasterRCNN",
    "ModelConfig",
    "TrainConfig",
    "__version__",
    "build_model",
    "evaluate",
    "load_config",
    "load_model",
    "predict",
    "save_model",
    "train",
]
