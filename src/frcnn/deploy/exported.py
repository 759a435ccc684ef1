"""Exported models (ONNX run by ONNX Runtime, TorchScript, OpenVINO IR) called like a
FasterRCNN in eval mode: ``detector(images)`` returns per image ``boxes``, ``scores``,
``labels`` tensors."""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError, require
from ..modeling.transform import scale_boxes

log = logging.getLogger("frcnn")


class ExportedDetector:
    """What both kinds share: ``class_names``, ``config``, ``calibration`` and
    ``detections_per_img`` from the metadata ``frcnn export`` wrote, and the call over a
    list of images (each run alone: the graphs take one image)."""

    def __init__(self, path: str | os.PathLike, meta: Mapping[str, str]) -> None:
        self.path = path
        self.class_names = json.loads(meta.get("class_names", "null"))
        self.config = json.loads(meta.get("config", "{}"))
        self.calibration = json.loads(meta.get("calibration", "null"))
        self.precision = meta.get("precision", "fp32")
        size = json.loads(meta.get("input_size", "null"))  # older exports: not recorded
        self.input_size = tuple(size) if size else None
        self.fixed_size = self.input_size if meta.get("dynamic") == "false" else None
        self.detections_per_img = int(self.config.get("box_detections_per_img", 100))
        self.weights_sha256 = meta.get("weights_sha256") or None  # older exports: not recorded
        self._warned = False

    def eval(self) -> ExportedDetector:
        return self

    def run(self, image: Tensor) -> tuple:
        """``(boxes, scores, labels)`` of one CHW image."""
        raise NotImplementedError

    def __call__(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        out = []
        for image in images:
            size = (int(image.shape[-2]), int(image.shape[-1]))
            stretch = bool(self.fixed_size) and size != self.fixed_size
            if stretch:
                self._say_stretched(size)
                image = F.interpolate(
                    image[None].float(), size=self.fixed_size, mode="bilinear", align_corners=False
                )[0]
            boxes, scores, labels = (torch.as_tensor(v) for v in self.run(image))
            if stretch:
                boxes = scale_boxes(boxes, self.fixed_size, size)
            out.append({"boxes": boxes, "scores": scores, "labels": labels.long()})
        return out

    def _say_stretched(self, size: tuple[int, int]) -> None:
        """Once per file: images of other sizes are stretched to the export's size."""
        if not self._warned:
            self._warned = True
            h, w = self.fixed_size
            log.warning(
                "warning: %s takes %dx%d images only: images of other sizes (here %dx%d) are "
                "stretched to it and the boxes mapped back, so detections are close to, not "
                "equal to, the PyTorch model's; export without --fixed (ONNX) for the "
                "model's own detections at any size",
                self.path,
                h,
                w,
                *size,
            )


class OnnxDetector(ExportedDetector):
    """An ONNX model ``frcnn export`` wrote, run by ONNX Runtime on the CPU.

    Raises:
        ImportError: onnxruntime missing. ValueError: not an ONNX model frcnn exported.
    """

    def __init__(
        self, path: str | os.PathLike, threads: int | None = None, spin: bool = True
    ) -> None:
        ort: Any = require("onnxruntime", "export", "running an .onnx model")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        if not spin:  # idle threads sleep at once instead of spinning (when sharing the CPU)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # ONNX Runtime raises its own error types
            raise InputError(f"{path}: not a readable ONNX model ({err})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "frcnn_version" not in meta:
            raise InputError(f"{path} is an ONNX model but not one `frcnn export` wrote")
        super().__init__(path, meta)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, image: Tensor) -> tuple:
        array = image.detach().float().cpu().numpy()
        return tuple(self.session.run(None, {self.input_name: array}))


class TorchScriptDetector(ExportedDetector):
    """A TorchScript file ``frcnn export --format torchscript`` wrote (traced at one image
    size: images of other sizes are stretched to it).

    Raises:
        ValueError: not a TorchScript file frcnn exported.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import torchvision  # noqa: F401 (registers the nms and roi_align ops the graph calls)

        extra = {"frcnn.json": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation
                self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        except Exception as err:  # TorchScript raises its own error types
            raise InputError(f"{path}: not a readable TorchScript model ({err})") from None
        if not extra["frcnn.json"]:
            raise InputError(f"{path} is a TorchScript model but not one `frcnn export` wrote")
        super().__init__(path, json.loads(extra["frcnn.json"]))

    @torch.no_grad()
    def run(self, image: Tensor) -> tuple:
        return self.module(image.float().cpu())


class OpenVinoDetector(ExportedDetector):
    """An OpenVINO IR (``.xml`` with its ``.bin``) ``frcnn export --format openvino`` wrote,
    compiled for the CPU: in float32 (``INFERENCE_PRECISION_HINT=f32``, else OpenVINO
    computes in bfloat16 where the CPU has it) with its int8 layers, if any, in int8.

    Raises:
        ImportError: openvino missing. ValueError: not an IR frcnn exported.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        from .openvino import FP32_CONFIG, ir_weights, openvino, read_metadata

        ov = openvino()
        if not ir_weights(path).is_file():
            raise InputError(f"{path}: an OpenVINO model needs its weights {ir_weights(path)}")
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as err:  # OpenVINO raises its own error types
            raise InputError(f"{path}: not a readable OpenVINO model ({err})") from None
        meta = read_metadata(model)
        if "frcnn_version" not in meta:
            raise InputError(f"{path} is an OpenVINO model but not one `frcnn export` wrote")
        super().__init__(path, meta)
        config = dict(FP32_CONFIG)
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def run(self, image: Tensor) -> tuple:
        array = image.detach().float().cpu().numpy()
        found = self.request.infer({0: array})
        return tuple(found[self.compiled.output(name)] for name in ("boxes", "scores", "labels"))
