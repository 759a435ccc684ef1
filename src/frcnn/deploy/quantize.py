"""Static int8 quantisation of an exported ONNX model with ONNX Runtime, calibrated on images.

The heavy layers (convolutions and matrix products of the backbone with its neck, the RPN's
shared convolution and the box head) get int8 weights (per output channel) and int8
activations whose ranges are measured on calibration images from the user's data; anchors,
box decoding, NMS, RoIAlign and the class-specific regression stay float32. ONNX Runtime then
runs those layers with its integer kernels (VNNI where the CPU has it). Detections change
(ranges are clipped to what the calibration images showed), so the file is labelled
``precision: int8`` in its metadata and ``frcnn benchmark --data`` reports its accuracy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch.nn.functional as F

from ..errors import InputError

# The exporter records each node's module path; these (and what they hold) do nearly all of
# the arithmetic.
HEAVY_SCOPES = (
    "model.backbone",
    "model.rpn.head.conv",
    "model.rpn.head.extra_convs",
    "model.roi_heads.box_head",
)
QUANTISED_OPS = ("Conv", "MatMul", "Gemm")


def read_calibration_images(
    data: str | os.PathLike, n: int, size: tuple[int, int] | None
) -> list[np.ndarray]:
    """Up to ``n`` images of ``data``, spread over it, as float32 CHW arrays in 0..1 (each
    resized to ``size`` when the graph takes one size).

    Raises:
        ValueError: the data has no images.
    """
    from ..data.images import to_tensor
    from ..data.loader import readable_images
    from ..data.sources import read_dataset

    records = [r for r in read_dataset(data).images if r.skip is None]
    picks = np.unique(np.linspace(0, len(records) - 1, min(n, len(records))).round().astype(int))
    found = readable_images([records[i] for i in picks], "the int8 calibration")
    if not found:
        raise InputError(f"{data}: no readable images to calibrate the int8 ranges on")
    arrays = []
    for _, read in found:
        image = to_tensor(read)
        if size is not None:
            image = F.interpolate(image[None], size=size, mode="bilinear")[0]
        arrays.append(np.ascontiguousarray(image.numpy(), dtype=np.float32))
    return arrays


def heavy_nodes(model: object, ops: Sequence[str] = QUANTISED_OPS) -> list[str]:
    """Names of the ``ops`` nodes of an ONNX model that sit in :data:`HEAVY_SCOPES`."""
    names = []
    for node in model.graph.node:
        scopes = {p.key: p.value for p in node.metadata_props}.get("pkg.torch.onnx.name_scopes", "")
        inside = any(f"'{s}'" in scopes or f"'{s}." in scopes for s in HEAVY_SCOPES)
        if node.op_type in ops and inside:
            names.append(node.name)
    return names


class _Reader:
    """ONNX Runtime's calibration reader protocol over a list of images."""

    def __init__(self, name: str, images: Sequence[np.ndarray]) -> None:
        self.feeds: Iterator[dict] = iter([{name: image} for image in images])

    def get_next(self) -> dict | None:
        return next(self.feeds, None)

    def rewind(self) -> None:  # pragma: no cover - called by some ORT versions only
        pass


def quantize_int8(
    source: str | os.PathLike, out: str | os.PathLike, images: Sequence[np.ndarray]
) -> Path:
    """Write the int8 version of the float32 ONNX model ``source`` to ``out`` (QDQ format,
    per-channel int8 weights, uint8 activations calibrated by min/max on ``images``)."""
    import onnx

    model = onnx.load(str(source))
    nodes = heavy_nodes(model)
    if not nodes:
        raise InputError(f"{source}: found no layers to quantise (not an frcnn export?)")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser's lines (bias copies, tips) go to the root logger
    try:
        _quantize(source, out, _Reader(model.graph.input[0].name, images), nodes)
    finally:
        root.setLevel(level)
    quantised = onnx.load(str(out))
    meta = {p.key: p.value for p in model.metadata_props}
    meta["precision"] = "int8"
    onnx.helper.set_model_props(quantised, meta)
    onnx.save(quantised, str(out))
    return Path(out)


def _quantize(source: object, out: object, reader: _Reader, nodes: list[str]) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(source),
        str(out),
        reader,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(QUANTISED_OPS),
        nodes_to_quantize=nodes,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
