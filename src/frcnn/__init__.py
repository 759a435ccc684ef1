"""frcnn: train, evaluate and use Faster R-CNN object detectors on your own data."""

from .api import evaluate, predict, train
from .config import TrainConfig, load_config
from .io.model_file import load_model, save_model
from .modeling.builder import MODELS, ModelConfig, build_model
from .modeling.detector import FasterRCNN

__version__ = "0.1.0"

__all__ = [
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
