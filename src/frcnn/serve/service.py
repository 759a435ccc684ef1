"""The model a server serves: loaded as ``frcnn predict`` loads it, predicting batches of
decoded uploads through the same path (tensor, detector, kept detections, JSON)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.images import to_tensor
from ..inference.options import InferenceOptions
from ..inference.predict import Prediction, detect

FORMATS = {".onnx": "onnx", ".torchscript": "torchscript", ".xml": "openvino"}


@dataclass
class Request:
    """One image to predict: its name in the answer, its pixels, its score threshold."""

    name: str
    image: np.ndarray
    conf: float


class DetectorService:
    """A detector loaded from ``weights`` with ``options`` (device, precision, threshold,
    detection limit) and what ``GET /model`` says about it."""

    def __init__(self, weights: str | os.PathLike, options: InferenceOptions) -> None:
        from ..inference.compose import load_detector

        self.weights = str(weights)
        self.options = options
        self.detector = load_detector(weights, options)
        self.conf = options.threshold(self.detector)
        self.class_names = list(self.detector.class_names or [])

    @property
    def format(self) -> str:
        return FORMATS.get(Path(self.weights).suffix.lower(), "pytorch")

    @property
    def batches_images(self) -> bool:
        """Whether several images run in one call: a PyTorch model batches images that pad
        to the same input size (so a detection never depends on its neighbours); an
        exported graph takes one image at a time."""
        return self.format == "pytorch"

    def predict(self, requests: Sequence[Request]) -> list[dict]:
        """``frcnn predict``'s JSON entry for each request, in order."""
        tensors = [to_tensor(r.image) for r in requests]
        found = detect(self.detector, tensors)
        return [
            Prediction.kept(Path(r.name), t, d, r.conf).to_json(self.class_names)
            for r, t, d in zip(requests, tensors, found, strict=True)
        ]

    def describe(self, max_batch: int, max_wait_ms: float) -> dict:
        """What ``GET /model`` returns."""
        from ..inference.detectors import detections_per_img

        d = self.detector
        size = getattr(d, "input_size", None) or _model_input_size(d)
        batching = (
            f"up to {max_batch} images waiting at most {max_wait_ms:g} ms run in one call; "
            "within it, images that pad to the same input size are batched (the same "
            "detections as one at a time)"
            if self.batches_images
            else f"up to {max_batch} waiting images run one after another (an exported "
            "graph takes one image)"
        )
        return {
            "weights": Path(self.weights).name,
            "format": self.format,
            "precision": getattr(d, "precision", None) or self.options.precision,
            "classes": self.class_names,
            "conf": self.conf,
            "max_detections": detections_per_img(d),
            "input": {
                "size": list(size) if size else None,
                "any_size": getattr(d, "fixed_size", None) is None,
                "takes": "an image file (JPEG, PNG, BMP, TIFF, WebP...) as a multipart form "
                "file or as the raw body; EXIF orientation applied",
            },
            "batching": batching,
        }


def _model_input_size(detector: object) -> tuple[int, int] | None:
    model = getattr(detector, "inner", detector)
    model = getattr(model, "model", model)
    if not hasattr(model, "transform"):
        return None
    from ..deploy.export import input_size

    return input_size(model)
