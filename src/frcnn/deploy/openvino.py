"""OpenVINO IR of an exported model: the ONNX graph of :mod:`frcnn.deploy.export` converted
by OpenVINO (``.xml`` graph + ``.bin`` weights), and its int8 version quantised by NNCF.

The IR is the same graph as the ONNX export (one CHW float32 image in 0..1 in; ``boxes,
scores, labels`` out; any size unless fixed), its weights kept in float32, frcnn's metadata
in the IR's ``rt_info`` under ``frcnn``. OpenVINO's CPU plugin computes in bfloat16 where the
CPU has it unless told otherwise, so frcnn compiles an fp32 IR with
``INFERENCE_PRECISION_HINT=f32`` (the same detections as PyTorch); an int8 IR's quantised
layers run OpenVINO's integer kernels.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, require
from ..io.atomic import TMP_SUFFIX

log = logging.getLogger("frcnn")

META_SECTION = "frcnn"  # rt_info section holding metadata() (export.py)
FP32_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}
IR_HEAVY_OPS = ("Convolution", "GroupConvolution", "MatMul")


def openvino() -> Any:
    """The ``openvino`` module, or an error naming the extra."""
    return require("openvino", "openvino", "OpenVINO export and inference")


def ir_weights(xml: str | os.PathLike) -> Path:
    """The ``.bin`` file of an IR's ``.xml`` (OpenVINO reads it from beside the graph)."""
    return Path(xml).with_suffix(".bin")


def save_ir(model: Any, out: str | os.PathLike, meta: Mapping[str, str]) -> Path:
    """Write an ``openvino.Model`` as ``out`` (``.xml``) and its ``.bin``, weights in float32
    and ``meta`` in ``rt_info`` under ``frcnn``; each file replaced atomically (the ``.bin``
    first), through a temporary folder beside them that is removed on any error."""
    ov = openvino()
    out = Path(out)
    if out.suffix.lower() != ".xml":
        raise InputError(f"{out}: an OpenVINO model is written as .xml (with its .bin)")
    for key, value in meta.items():
        model.set_rt_info(str(value), [META_SECTION, key])
    info = model.get_rt_info()
    if "framework" in info:  # the converter's copy of the ONNX metadata: ours is META_SECTION
        del info["framework"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=TMP_SUFFIX, dir=out.parent))
    try:
        ov.save_model(model, str(tmp / out.name), compress_to_fp16=False)
        os.replace(ir_weights(tmp / out.name), ir_weights(out))
        os.replace(tmp / out.name, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_metadata(model: Any) -> dict[str, str]:
    """frcnn's metadata of a read ``openvino.Model`` (empty: not an IR frcnn wrote)."""
    if not model.has_rt_info([META_SECTION]):
        return {}
    keys = model.get_rt_info([META_SECTION]).astype(dict)
    return {k: model.get_rt_info([META_SECTION, k]).astype(str) for k in keys}


def onnx_to_ir(onnx_file: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Convert an ONNX model ``frcnn export`` wrote to an IR at ``out``, its metadata
    carried over, with ``int8_layers``: the IR's names of the layers int8 quantises (the
    ONNX export's, :func:`frcnn.deploy.quantize.heavy_nodes`)."""
    import onnx

    from .quantize import heavy_nodes

    ov = openvino()
    graph = onnx.load(str(onnx_file))
    meta = {p.key: p.value for p in graph.metadata_props}
    model = ov.convert_model(str(onnx_file))
    meta["int8_layers"] = json.dumps(_ir_names(model, heavy_nodes(graph)))
    return save_ir(model, out, meta)


def _ir_names(model: Any, onnx_names: Sequence[str]) -> list[str]:
    """The IR's convolutions and matrix products made from the ONNX nodes ``onnx_names``
    (OpenVINO names them after the node, ``NODE`` or ``NODE/WithoutBiases``)."""
    wanted = set(onnx_names)
    return [
        op.get_friendly_name()
        for op in model.get_ops()
        if op.get_type_name() in IR_HEAVY_OPS and op.get_friendly_name().split("/")[0] in wanted
    ]


@contextlib.contextmanager
def _quiet() -> Any:
    """NNCF's progress bars and log lines, and torch's note when NNCF imports it, kept out
    of frcnn's output (at debug level instead)."""
    chatter = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("nncf", "torch.utils.cpp_extension")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with (
            contextlib.redirect_stdout(chatter),
            contextlib.redirect_stderr(chatter),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        log.debug("nncf: %s", chatter.getvalue())


def quantize_ir(
    source: str | os.PathLike, out: str | os.PathLike, images: Sequence[np.ndarray]
) -> Path:
    """Write the int8 version of the float32 IR ``source`` to ``out``: NNCF's post-training
    quantisation of the layers its metadata lists as ``int8_layers`` (the backbone with its
    neck, the RPN's shared convolution, the box head: as the ONNX int8 export), every other
    operation left in float32 (ranges of box coordinates are not int8 material); activation
    ranges measured on ``images`` (float32 CHW arrays in 0..1); metadata kept, precision
    ``int8``.

    Raises:
        ImportError: nncf missing, naming the extra. ValueError: no layers to quantise.
    """
    ov = openvino()
    nncf: Any = require("nncf", "openvino", "OpenVINO int8 quantisation")
    model = ov.Core().read_model(str(source))
    meta = read_metadata(model)
    layers = set(json.loads(meta.get("int8_layers", "[]")))
    if not layers:
        raise InputError(f"{source}: found no layers to quantise (not an frcnn export?)")
    others = [op.get_friendly_name() for op in model.get_ops()]
    scope = nncf.IgnoredScope(names=[n for n in others if n not in layers], validate=False)
    with _quiet():
        quantised = nncf.quantize(
            model, nncf.Dataset(list(images)), subset_size=len(images), ignored_scope=scope
        )
    meta["precision"] = "int8"
    return save_ir(quantised, out, meta)
