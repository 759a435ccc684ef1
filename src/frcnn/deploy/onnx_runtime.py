"""Exported models (ONNX run by ONNX Runtime, TorchScript) called like a FasterRCNN in eval
mode."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import torch
from torch import Tensor


class OnnxDetector:
    """``detector(images)`` returns per image ``boxes``, ``scores``, ``labels`` tensors, as
    :class:`~frcnn.modeling.detector.FasterRCNN` does in eval mode; ``class_names``,
    ``config`` and ``calibration`` come from the file's metadata.

    Raises:
        ImportError: onnxruntime missing. ValueError: not an ONNX model frcnn exported.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError(
                "running an .onnx model needs onnxruntime: pip install 'frcnn[export]'"
            ) from err
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # ONNX Runtime raises its own error types
            raise ValueError(f"{path}: not a readable ONNX model ({err})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "frcnn_version" not in meta:
            raise ValueError(f"{path} is an ONNX model but not one `frcnn export` wrote")
        self.path = path
        self.class_names = json.loads(meta.get("class_names", "null"))
        self.config = json.loads(meta.get("config", "{}"))
        self.calibration = json.loads(meta.get("calibration", "null"))
        self.detections_per_img = int(self.config.get("box_detections_per_img", 100))
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = self.session.get_inputs()[0].shape

    def eval(self) -> OnnxDetector:
        return self

    def __call__(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        out = []
        for image in images:
            array = image.detach().float().cpu().numpy()
            boxes, scores, labels = self.session.run(None, {self.input_name: array})
            out.append(
                {
                    "boxes": torch.from_numpy(boxes),
                    "scores": torch.from_numpy(scores),
                    "labels": torch.from_numpy(labels).long(),
                }
            )
        return out


class TorchScriptDetector:
    """A TorchScript file ``frcnn export --format torchscript`` wrote (traced at one image
    size: give it images of that size), called like :class:`OnnxDetector`.

    Raises:
        ValueError: not a TorchScript file frcnn exported.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import torchvision  # noqa: F401 (registers the nms and roi_align ops the graph calls)

        extra = {"frcnn.json": ""}
        try:
            self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except Exception as err:  # TorchScript raises its own error types
            raise ValueError(f"{path}: not a readable TorchScript model ({err})") from None
        if not extra["frcnn.json"]:
            raise ValueError(f"{path} is a TorchScript model but not one `frcnn export` wrote")
        meta = json.loads(extra["frcnn.json"])
        self.path = path
        self.class_names = json.loads(meta.get("class_names", "null"))
        self.config = json.loads(meta.get("config", "{}"))
        self.calibration = json.loads(meta.get("calibration", "null"))
        self.detections_per_img = int(self.config.get("box_detections_per_img", 100))

    def eval(self) -> TorchScriptDetector:
        return self

    def __call__(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        out = []
        with torch.no_grad():
            for image in images:
                boxes, scores, labels = self.module(image.float().cpu())
                out.append({"boxes": boxes, "scores": scores, "labels": labels})
        return out
