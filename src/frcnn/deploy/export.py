"""Export a model to ONNX: one image in, ``boxes, scores, labels`` out, at any image size.

The graph holds the whole detector, preprocessing included (normalisation, resize, padding),
so running it needs nothing from frcnn: ONNX Runtime and an image as a float32 array
``[3, H, W]`` of RGB values in 0..1. Class names, the build configuration and the input's
description travel in the file's metadata (``metadata_props``). It is made with
``torch.export`` (sizes symbolic, not traced constants) and ``torch.onnx``'s exporter.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from .._version import __version__
from ..defaults import EXPORT_FORMATS, EXPORT_PRECISIONS
from ..errors import InputError, require
from ..io.atomic import TMP_SUFFIX, atomic_write
from ..modeling.detector import FasterRCNN
from .precision import Half, heavy_layers
from .quantize import quantize_int8, read_calibration_images

log = logging.getLogger("frcnn")

INPUT_NAME = "image"
OUTPUT_NAMES = ("boxes", "scores", "labels")
INPUT_DOC = (
    "image: float32 [3, H, W], RGB in 0..1, any H and W (one fixed size with --fixed); "
    "outputs boxes float32 [D, 4] x1 y1 x2 y2 in that image's pixels, scores float32 [D], "
    "labels int64 [D] (1..K, index into class_names from 1)"
)


class OneImage(nn.Module):
    """A detector as a function of one CHW image returning ``(boxes, scores, labels)``."""

    def __init__(self, model: FasterRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        found = self.model([image])[0]
        return found["boxes"], found["scores"], found["labels"]


def input_size(model: FasterRCNN) -> tuple[int, int]:
    """The (height, width) of a fixed-size export: the model's own input size."""
    size = model.transform.fixed_size or (model.transform.min_size[-1],) * 2
    return int(size[0]), int(size[1])


def _sample_image(model: FasterRCNN, dynamic: bool) -> Tensor:
    """An example input for the export: the fixed input size, or (dynamic) a non-square
    image near the model's size, so no size is special."""
    h, w = input_size(model)
    generator = torch.Generator().manual_seed(0)
    return torch.rand(3, h, w + (37 if dynamic else 0), generator=generator)


def export_program(model: FasterRCNN, dynamic: bool = True) -> torch.export.ExportedProgram:
    """The model (eval mode, on the CPU) as a ``torch.export`` program of one image; with
    ``dynamic``, its height and width are symbolic (any size from 32 to 8192 pixels)."""
    model = model.eval().cpu()
    example = _sample_image(model, dynamic)
    shapes = None
    if dynamic:
        dims = {1: torch.export.Dim("height", min=32, max=8192)}
        dims[2] = torch.export.Dim("width", min=32, max=8192)
        shapes = (dims,)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torchvision's meta registrations
        return torch.export.export(OneImage(model), (example,), dynamic_shapes=shapes, strict=False)


def weights_hash(weights: str | os.PathLike) -> str:
    """The SHA-256 of a model file (for ``coco:NAME``, of its cached file): what an export
    records of the weights it came from."""
    from ..io.zoo import weights_file

    digest = hashlib.sha256()
    with open(weights_file(weights), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata(
    model: FasterRCNN,
    precision: str = "fp32",
    dynamic: bool = True,
    weights_sha256: str | None = None,
) -> dict[str, str]:
    """What an exported file carries besides the graph (``weights_sha256``: the model
    file it was exported from, when known)."""
    return {
        "frcnn_version": __version__,
        "weights_sha256": weights_sha256 or "",
        "precision": precision,
        "input_size": json.dumps(list(input_size(model))),
        "dynamic": json.dumps(dynamic),
        "class_names": json.dumps(model.class_names),
        "config": json.dumps(model.config),
        "calibration": json.dumps(getattr(model, "calibration", None)),
        "input": INPUT_DOC,
    }


def export_onnx(
    model: FasterRCNN,
    out: str | os.PathLike,
    dynamic: bool = True,
    opset: int | None = None,
    precision: str = "fp32",
    weights_sha256: str | None = None,
) -> Path:
    """Write ``model`` as an ONNX file (see the module doc), atomically; returns its path.

    Raises:
        ImportError: onnx or onnxscript missing, saying what to install.
    """
    require("onnx", "export", "ONNX export")
    require("onnxscript", "export", "ONNX export")
    program = export_program(model, dynamic)
    options = {} if opset is None else {"opset_version": int(opset)}
    chatter = io.StringIO()  # the exporter's progress and optimiser lines, kept for --debug
    for name in ("onnx_ir", "onnxscript", "torch.onnx"):  # their INFO lines are not ours
        logging.getLogger(name).setLevel(logging.WARNING)
    with (
        contextlib.redirect_stdout(chatter),
        contextlib.redirect_stderr(chatter),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", FutureWarning)
        onnx_program = torch.onnx.export(
            program,
            dynamo=True,
            report=False,
            verbose=False,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            **options,
        )
    log.debug("torch.onnx: %s", chatter.getvalue())
    onnx_program.model.metadata_props.update(metadata(model, precision, dynamic, weights_sha256))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(out, lambda tmp: onnx_program.save(tmp))


def heavy_half(model: FasterRCNN) -> FasterRCNN:
    """A copy of ``model`` whose heavy layers compute in float16 (explicit casts, so the
    exported graph holds them); box arithmetic stays float32."""
    half = copy.deepcopy(model).eval()
    heavy_layers(half, Half)
    return half


def export_torchscript(
    model: FasterRCNN, out: str | os.PathLike, weights_sha256: str | None = None
) -> Path:
    """Write ``model`` as TorchScript traced at its input size (a fixed-size graph: tracing
    records one size; use ONNX for any size), the metadata in ``frcnn.json`` inside,
    atomically."""
    model = model.eval().cpu()
    example = _sample_image(model, dynamic=False)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python values: sizes are fixed
        traced = torch.jit.trace(OneImage(model), (example,), check_trace=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    extra = {
        "frcnn.json": json.dumps(metadata(model, dynamic=False, weights_sha256=weights_sha256))
    }

    def save(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
            torch.jit.save(traced, tmp, _extra_files=extra)

    return atomic_write(out, save)


FORMAT_SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript", "openvino": ".xml"}


def default_out(
    weights: Path, format: str, precision: str = "fp32", dynamic: bool | None = None
) -> Path:
    """Where an export goes unless told: beside the weights, one name per variant:
    ``best.onnx`` (any size), ``best.fixed.onnx``, ``best.fp16.onnx``,
    ``best.fixed.int8.onnx`` ..., ``best.torchscript`` (fixed by tracing), ``best.xml``
    (OpenVINO, with ``best.bin``), ``best.int8.xml`` ...; for ``coco:NAME``,
    ``NAME_coco.onnx`` ... in the working folder."""
    from ..io.zoo import output_base

    weights = output_base(weights)
    dynamic = resolve_dynamic(format, dynamic)
    tags = ("" if dynamic or format == "torchscript" else ".fixed") + (
        "" if precision == "fp32" else f".{precision}"
    )
    return weights.with_name(f"{weights.stem}{tags}{FORMAT_SUFFIXES[format]}")


def resolve_dynamic(format: str, dynamic: bool | None) -> bool:
    """Whether an export takes any image size: ONNX and OpenVINO do unless ``--fixed``;
    TorchScript is traced at one size."""
    return format != "torchscript" if dynamic is None else bool(dynamic)


def export_openvino(
    model: FasterRCNN,
    out: str | os.PathLike,
    dynamic: bool = True,
    opset: int | None = None,
    weights_sha256: str | None = None,
) -> Path:
    """Write ``model`` as an OpenVINO IR (``out`` ``.xml`` and its ``.bin``): its ONNX
    export (:func:`export_onnx`) converted by OpenVINO, metadata included
    (:mod:`frcnn.deploy.openvino`).

    Raises:
        ImportError: openvino (or the ONNX exporter) missing, saying what to install.
    """
    from .openvino import onnx_to_ir, openvino

    openvino()  # before the minute an ONNX export can take
    out = Path(out)
    part = out.with_name(f".{out.stem}.onnx-part{TMP_SUFFIX}")
    try:
        export_onnx(model, part, dynamic, opset, weights_sha256=weights_sha256)
        return onnx_to_ir(part, out)
    finally:
        part.unlink(missing_ok=True)


def _check_request(format: str, precision: str, dynamic: bool, data: object) -> None:
    """Refuse what cannot be exported, saying what to do instead."""
    if format not in EXPORT_FORMATS:
        raise InputError(
            f"unknown export format {format!r}; choose from {', '.join(EXPORT_FORMATS)}"
        )
    if precision not in EXPORT_PRECISIONS:
        raise InputError(
            f"unknown precision {precision!r}; choose from {', '.join(EXPORT_PRECISIONS)}"
        )
    if format == "torchscript" and dynamic:
        raise InputError(
            "a TorchScript export is traced at one image size; for any size use "
            "--format onnx (any size unless --fixed)"
        )
    if format == "torchscript" and precision != "fp32":
        raise InputError("--half and --int8 are ONNX exports: use --format onnx")
    if format == "openvino" and precision == "fp16":
        raise InputError(
            "--half is for ONNX on GPUs (--format onnx --half); OpenVINO on a CPU computes in "
            "float32 or, with --int8, in int8"
        )
    if precision == "int8" and data is None:
        raise InputError(
            "--int8 needs --data: images to measure the activation ranges on (a few dozen "
            "from your training or validation data)"
        )


def remove_export(path: Path) -> None:
    """Delete an exported file (an OpenVINO IR's ``.bin`` with its ``.xml``)."""
    path.unlink(missing_ok=True)
    if path.suffix.lower() == ".xml":
        path.with_suffix(".bin").unlink(missing_ok=True)


def _fail_if_differs(cases: list, written: Path) -> None:
    failed = [c for c in cases if c.problem]
    if failed:
        remove_export(written)
        raise InputError(
            f"the exported model's detections differ from PyTorch's, so {written} was removed: "
            + "; ".join(c.line() for c in failed)
        )


def export_model(
    weights: str | os.PathLike,
    format: str = "onnx",
    out: str | os.PathLike | None = None,
    opset: int | None = None,
    dynamic: bool | None = None,
    precision: str = "fp32",
    data: str | os.PathLike | None = None,
    calibration_images: int = 32,
) -> tuple[Path, list]:
    """Export a model file and check the export against PyTorch on a few images (see
    :mod:`frcnn.deploy.parity`); returns the file and the checked cases.

    ONNX and OpenVINO (``format="openvino"``: the ONNX graph as an IR, ``.xml`` + ``.bin``)
    exports take any image size (``dynamic=None`` or True; False: the model's input size
    only, for runtimes that need static shapes); TorchScript is traced at the input size.
    A fixed-size export stretches images of other sizes to its size
    (:class:`~frcnn.deploy.exported.ExportedDetector`). The file records the SHA-256 of
    ``weights``, so ``frcnn benchmark`` reuses it only for those weights.

    ``precision`` ``fp16`` (``--half``) or ``int8`` (``--int8``, calibrated on up to
    ``calibration_images`` images of ``data``) puts the heavy layers of an ONNX export in
    that precision (:mod:`frcnn.deploy.precision`, :mod:`frcnn.deploy.quantize`; int8
    OpenVINO: NNCF's quantisation, :mod:`frcnn.deploy.openvino`); their
    detections are compared and the differences reported, not required to vanish (an int8
    export's float32 graph is checked strictly first). ``frcnn benchmark --data`` measures
    what they cost in accuracy.

    Raises:
        ValueError: the exported model's detections differ (the file is removed), or an
            unknown format or precision, or one the format cannot take.
    """
    from ..io.model_file import load_model
    from .optimize import optimize
    from .parity import check_parity, parity_images

    _check_request(format, precision, dynamic, data)
    dynamic = resolve_dynamic(format, dynamic)
    out = Path(out) if out else default_out(weights, format, precision, dynamic)
    model = load_model(weights, "cpu")
    source = weights_hash(weights)
    images = parity_images(input_size(model), dynamic)
    fast = optimize(model)  # exported with its batch norms folded; checked against `model`
    graph = (format, dynamic, opset, source)
    if precision == "int8":
        written = _export_int8(model, fast, out, graph, images, (data, calibration_images))
    else:
        exported = heavy_half(fast) if precision == "fp16" else fast
        written = _export_float(exported, out, graph, precision)
    cases = check_parity(model, exported_runner(written), images, strict=precision == "fp32")
    _fail_if_differs(cases, written)
    return written, cases


def exported_runner(path: Path) -> Callable:
    """An exported file loaded to run, by its suffix (:mod:`frcnn.deploy.exported`)."""
    from .exported import OnnxDetector, OpenVinoDetector, TorchScriptDetector

    kinds = {".onnx": OnnxDetector, ".torchscript": TorchScriptDetector, ".xml": OpenVinoDetector}
    return kinds.get(path.suffix.lower(), OnnxDetector)(path)


def _export_float(model: FasterRCNN, out: Path, graph: tuple, precision: str = "fp32") -> Path:
    """``model`` written in ``graph``'s format (format, dynamic, opset, weights' hash),
    computing as it does (``precision``: float32, or its heavy layers in float16)."""
    format, dynamic, opset, source = graph
    if format == "torchscript":
        return export_torchscript(model, out, source)
    if format == "openvino":
        return export_openvino(model, out, dynamic, opset, source)
    return export_onnx(model, out, dynamic, opset, precision, source)


def _export_int8(
    model: FasterRCNN,
    fast: FasterRCNN,
    out: Path,
    graph: tuple,
    images: list,
    calibration: tuple[str | os.PathLike | None, int],
) -> Path:
    """The int8 export: the float32 graph (``graph``: format, dynamic, opset, weights' hash)
    checked strictly against ``model``, then quantised on ``calibration`` (data, count):
    by ONNX Runtime (ONNX) or NNCF (OpenVINO)."""
    from .openvino import quantize_ir
    from .parity import check_parity

    format, dynamic = graph[0], graph[1]
    data, count = calibration  # read first: a bad --data fails before the export's minute
    arrays = read_calibration_images(data, count, None if dynamic else input_size(model))
    part = out.with_name(f"{out.stem}.fp32-part{out.suffix}")
    fp32 = _export_float(fast, part, graph)
    try:
        _fail_if_differs(check_parity(model, exported_runner(fp32), images), fp32)
        quantize = quantize_ir if format == "openvino" else quantize_int8
        return quantize(fp32, out, arrays)
    finally:
        remove_export(fp32)
