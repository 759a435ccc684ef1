"""From model files and :class:`InferenceOptions` to one detector.

``load_detector(weights, options)`` loads each model file (an frcnn model built with the
options' ``max_det`` and ``merge``, batch norms folded, computing in the options'
precision; or an exported ONNX/TorchScript model) and :func:`compose` wraps them:

    models -> MergedDetector (several models, or TTA views) | ModelDetector (one model)
           -> CalibratedDetector (calibrated) -> TiledDetector (tile)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from ..deploy.exported import ExportedDetector
from ..deploy.optimize import optimize
from ..deploy.precision import with_precision
from ..engine.device import resolve_device
from ..engine.distributed import DistInfo
from ..errors import InputError
from ..io.model_file import load_model
from ..modeling.detector import FasterRCNN
from .calibrated import CalibratedDetector
from .detectors import ModelDetector, TiledDetector
from .ensemble import MergedDetector, View, tta_views
from .options import InferenceOptions

log = logging.getLogger("frcnn")

EXPORTED_SUFFIXES = (".onnx", ".torchscript", ".xml")


def model_files(weights: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """``weights`` as a list of paths: one file, or several (an ensemble).

    Raises:
        ValueError: no file given.
    """
    files = [weights] if isinstance(weights, (str, os.PathLike)) else list(weights)
    if not files:
        raise InputError("no model file given (--weights)")
    return [Path(f) for f in files]


def load_models(
    weights: str | os.PathLike | Sequence[str | os.PathLike], options: InferenceOptions
) -> list[FasterRCNN | ExportedDetector]:
    """Every model file of ``weights``, built as ``options`` say, all of the same classes.

    Raises:
        ValueError: models of different classes, or options an exported model cannot take.
    """
    files = model_files(weights)
    if options.calibrated and len(files) == 1:
        files = [with_calibration(files[0])]
    models = [load_one(f, options) for f in files]
    for f, m in zip(files[1:], models[1:], strict=True):
        if m.class_names != models[0].class_names:
            raise InputError(
                f"{f}: classes {m.class_names} differ from {files[0]}'s "
                f"{models[0].class_names}; an ensemble needs models of the same classes"
            )
    return models


def calibrated_path(weights: str | os.PathLike) -> Path:
    """Where ``frcnn calibrate`` writes a calibrated copy of ``weights`` by default:
    ``best.safetensors`` -> ``best.calibrated.safetensors`` (``coco:NAME`` ->
    ``NAME_coco.calibrated.safetensors`` in the working folder)."""
    from ..io.zoo import output_base

    weights = output_base(weights)
    return weights.with_name(f"{weights.stem}.calibrated{weights.suffix}")


def with_calibration(path: Path) -> Path:
    """``path`` when its model file holds a score calibration, else the calibrated copy
    ``frcnn calibrate`` wrote beside it.

    Raises:
        ValueError: neither holds one, naming the file looked for and how to make it.
    """
    from ..io.model_file import read_calibration
    from ..io.zoo import is_coco

    # Published COCO weights hold no calibration: only a copy of them can.
    if not is_coco(path) and (
        path.suffix.lower() in EXPORTED_SUFFIXES or read_calibration(path) is not None
    ):
        return path
    beside = calibrated_path(path)
    if beside.is_file() and read_calibration(beside) is not None:
        log.info("calibrated scores: using %s (frcnn calibrate's copy of %s)", beside, path)
        return beside
    raise InputError(
        f"{path} holds no score calibration and {beside} does not exist: fit one with "
        f"`frcnn calibrate --weights {path} --data VALIDATION_DATA` (it writes {beside})"
    )


def load_one(path: str | os.PathLike, options: InferenceOptions) -> FasterRCNN | ExportedDetector:
    """A model file built with the options' ``max_det`` and ``merge`` (batch norms folded:
    the same detections, sooner) computing in ``precision``; or an ONNX (run by ONNX
    Runtime), TorchScript or OpenVINO model ``frcnn export`` wrote."""
    suffix = Path(path).suffix.lower()
    if suffix in EXPORTED_SUFFIXES:
        _check_exported(path, options)
        from ..deploy.export import exported_runner

        return exported_runner(Path(path))
    overrides: dict = {}
    if options.max_det is not None:
        overrides["box_detections_per_img"] = int(options.max_det)
    if options.merge is not None:
        overrides["box_merge"] = options.merge
    model = load_model(path, resolve_device(options.device), overrides)
    return with_precision(optimize(model, copy_model=False), options.precision)


def _check_exported(path: str | os.PathLike, options: InferenceOptions) -> None:
    """Options an exported graph cannot honour: it was built with fixed values.

    Raises:
        ValueError: naming the option and what to do.
    """
    if options.precision != "fp32":
        raise InputError(
            f"{path}: an exported model computes in the precision it was exported with; "
            "--precision is for frcnn model files"
        )
    if options.max_det is not None:
        raise InputError(f"{path}: an exported model's --max-det is fixed; export it again")
    if options.merge is not None:
        raise InputError(f"{path}: an exported model's --merge is fixed; export it again")


def load_detector(
    weights: str | os.PathLike | Sequence[str | os.PathLike],
    options: InferenceOptions | None = None,
    ranks: DistInfo | None = None,
) -> nn.Module:
    """One detector (see :mod:`frcnn.inference.detectors`) from model files and options."""
    options = options or InferenceOptions()
    return compose(load_models(weights, options), options, ranks)


def compose(
    models: Sequence[nn.Module], options: InferenceOptions, ranks: DistInfo | None = None
) -> nn.Module:
    """Models (as built; nothing in them is changed) wrapped as ``options`` ask: fused when
    several or with TTA, calibrated, tiled (with ``ranks``, the tiles of each image shared by
    the ranks of a torchrun job: :mod:`frcnn.inference.ranks`).

    Raises:
        ValueError: a combination that has no meaning (calibrating fused scores, fusing
            exported models).
    """
    exported = any(isinstance(m, ExportedDetector) for m in models)
    if exported and (len(models) > 1 or options.tta):
        raise InputError(
            "ensembles and --tta take frcnn model files, not exported (ONNX or TorchScript) models"
        )
    if options.calibrated and (len(models) > 1 or options.tta):
        raise InputError(
            "calibrated scores are those of one model: leave out --tta and extra --weights, "
            "or calibrate the fused scores by hand"
        )
    if len(models) > 1 or options.tta:
        views = tta_views(options.tta) if options.tta else [View()]
        detector: nn.Module = MergedDetector(models, views, options.ensemble)
    elif exported:
        detector = models[0]
    else:
        detector = ModelDetector(models[0])
    if options.calibrated:
        detector = CalibratedDetector(detector)
    if options.tile:
        tiling = (options.tile, options.overlap, options.batch_size)
        detector = TiledDetector(detector, *tiling, ranks=ranks)
    return detector
