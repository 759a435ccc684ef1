"""The Python API mirroring the command line: train, evaluate, predict."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import TrainConfig, load_config
from .data.check import check_dataset
from .data.records import DetectionDataset
from .data.sources import read_dataset
from .defaults import BATCH_SIZE, CONF, TILE_OVERLAP
from .deploy.exported import ExportedDetector, OnnxDetector, TorchScriptDetector
from .deploy.optimize import optimize
from .deploy.precision import with_precision
from .engine.device import resolve_device
from .engine.hooks import Callback
from .engine.trainer import TrainResult
from .engine.trainer import train as _train
from .evaluation.coco import read_coco_results
from .evaluation.report import EvalResult, evaluate_detections
from .evaluation.write import write_evaluation
from .inference.calibrated import CalibratedDetector
from .inference.ensemble import TTA_SCALES, MergedDetector, MergeOptions, View, tta_views
from .inference.outputs import save_drawn, write_predictions
from .inference.predict import (
    Prediction,
    detections_per_img,
    expand_sources,
    predict_arrays,
    predict_dataset,
    predict_images,
)
from .inference.video import is_video, predict_video
from .io.model_file import load_model
from .modeling.detector import FasterRCNN

log = logging.getLogger("frcnn")


def train(
    config: TrainConfig | str | Path | None = None,
    overrides: Sequence[str] = (),
    callbacks: Sequence[Callback] = (),
    **values: Any,
) -> TrainResult:
    """Train a detector. ``config`` is a :class:`TrainConfig` or a YAML file; ``overrides``
    are ``section.key=value`` strings; ``values`` use dotted keys too
    (``train(**{"data.train": "data/shapes", "schedule.epochs": 5})``). ``callbacks`` are
    :class:`frcnn.Callback` objects called after the built-in hooks (see
    :mod:`frcnn.engine.hooks`)."""
    if not isinstance(config, TrainConfig):
        config = load_config(config, list(overrides), **values)
    return _train(config, callbacks)


def evaluate(
    weights: str | Path | None,
    data: str | Path,
    split: str | None = None,
    out: str | Path | None = None,
    conf: float = CONF,
    batch_size: int = BATCH_SIZE,
    predictions: str | Path | None = None,
    format: str | None = None,
    device: str = "auto",
    allow_mismatch: bool = False,
    tile: int | None = None,
    overlap: float = TILE_OVERLAP,
    max_det: int | None = None,
    dataset: DetectionDataset | None = None,
    run: str | Path | None = None,
    tta: bool | Sequence[float] = False,
    ensemble: MergeOptions | None = None,
    merge: str | None = None,
    calibrated: bool = False,
    size_bins: Sequence[float] | None = None,
    worst: int = 8,
    worst_by: str | None = None,
    precision: str = "fp32",
) -> EvalResult:
    """Evaluate a model file on a dataset, or score an existing COCO results file
    (``predictions``) without a model. With ``out``, writes ``metrics.json``, the CSV
    tables, the plots, ``worst`` images and ``report.html``. A model whose class names
    differ from the data's is an error unless ``allow_mismatch``. ``tile`` predicts each
    image in overlapping tiles merged as ``predict`` merges them; ``max_det`` is the most
    detections the model keeps per image (per tile when tiled) and the COCO numbers count
    (default: the model's, 100). ``dataset`` is checked ground truth to use instead of
    reading ``data``. ``run`` (a run folder) scores the validation images that run recorded,
    with its best weights, tiled and counted as it was trained; ``weights``, ``tile`` and
    ``max_det`` still override. ``weights`` may name several model files (an ensemble);
    ``tta``, ``ensemble``, ``merge``, ``calibrated``, ``precision`` are as in :func:`predict`;
    ``size_bins`` (box sides in px) bound the per-size bins; ``worst_by`` ranks by a type."""
    if predictions is not None and calibrated:
        raise ValueError("calibrated scores need the model (--weights), not a results file")
    data_lines: list[str] = []  # the data checks' summary, for the report
    if run is not None:
        dataset, weights, tile, overlap, max_det = _run_validation(
            run, weights, tile, overlap, max_det
        )
    if dataset is None:
        dataset, data_lines = _checked(data, format, split)
    if predictions is not None:
        preds = read_coco_results(predictions, dataset)
    else:
        models = _eval_model(weights, dataset, device, allow_mismatch, max_det, precision)
        model = _detector(models, tta, ensemble, merge, calibrated)
        max_det = detections_per_img(model)
        preds = predict_dataset(model, dataset, tile, overlap, batch_size)
    result = evaluate_detections(dataset, preds, conf, max_dets=max_det or 100, size_bins=size_bins)
    if out is not None:
        title = f"frcnn eval: {predictions or weights} on {data or run}"
        write_evaluation(
            result, dataset, out, title, data_lines, max_det or 100, True, worst, worst_by
        )
    return result


def _checked(
    data: str | Path, format: str | None, split: str | None
) -> tuple[DetectionDataset, list[str]]:
    """The dataset read and checked, and the checks' summary (also logged)."""
    dataset, report = check_dataset(read_dataset(data, format, split), "header")
    lines = report.summary_lines()
    for line in lines:
        log.info("  %s", line)
    return dataset, lines


def _run_validation(
    run: str | Path,
    weights: str | Path | None,
    tile: int | None,
    overlap: float,
    max_det: int | None,
) -> tuple[DetectionDataset, str | Path, int | None, float, int | None]:
    """A run's recorded validation images, best weights and tiling (arguments override)."""
    from .engine.val_split import read_run_validation

    recorded = read_run_validation(run)
    d, e = recorded.config.data, recorded.config.eval
    weights = weights or recorded.weights
    log.info("run %s: %d validation images, weights %s", run, len(recorded.dataset), weights)
    return (
        recorded.dataset,
        weights,
        tile or d.tile,
        overlap if tile else d.overlap,
        max_det or e.max_dets,
    )


def calibrate(
    weights: str | Path,
    data: str | Path,
    split: str | None = None,
    method: str = "isotonic",
    out: str | Path | None = None,
    format: str | None = None,
    device: str = "auto",
    tile: int | None = None,
    overlap: float = TILE_OVERLAP,
    batch_size: int = BATCH_SIZE,
    max_det: int | None = None,
) -> dict[str, Any]:
    """Fit a score calibration (``isotonic``, or ``temperature``: see
    :func:`frcnn.evaluation.calibration.fit_calibration`) on ``data``, images the model did
    not train on, and write the model with it to ``out`` (default: ``<weights>`` with
    ``.calibrated`` before the suffix). ``predict(..., calibrated=True)`` then reports
    calibrated scores. Returns the calibration, the ECE before and after (on ``data``) and
    the path written."""
    from .evaluation.calibration import apply_calibration, fit_calibration, reliability
    from .io.model_file import save_model

    weights = Path(weights)
    out = Path(out) if out else weights.with_name(f"{weights.stem}.calibrated{weights.suffix}")
    result = evaluate(
        weights,
        data,
        split,
        format=format,
        device=device,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        max_det=max_det,
    )
    d = result.detections
    calibration = fit_calibration(d["scores"], d["correct"], method)
    after = reliability(apply_calibration(calibration, d["scores"]), d["correct"])
    model = load_model(weights)
    model.calibration = calibration
    save_model(model, out)
    return {
        "calibration": calibration,
        "detections": len(d["scores"]),
        "ece_before": result.calibration.ece,
        "ece_after": after.ece,
        "out": out,
    }


def _eval_model(
    weights: str | Path | Sequence[str | Path] | None,
    ds: DetectionDataset,
    device: str,
    allow_mismatch: bool,
    max_det: int | None,
    precision: str = "fp32",
) -> list[FasterRCNN]:
    """The models to evaluate, their classes checked against the data's."""
    if weights is None:
        raise ValueError("evaluate needs weights or a predictions file")
    models = _load_models(weights, device, max_det, precision)
    model = models[0]
    if model.class_names and model.class_names != ds.class_names:
        message = f"model classes {model.class_names} differ from the data's {ds.class_names}"
        if not allow_mismatch:
            raise ValueError(
                f"{message}; labels would be compared by number. Pass --allow-mismatch "
                "(allow_mismatch=True) to score them anyway"
            )
        log.warning("%s; scoring labels by number as asked", message)
    return models


def _load_models(
    weights: str | Path | Sequence[str | Path],
    device: str,
    max_det: int | None,
    precision: str = "fp32",
) -> list[FasterRCNN]:
    """Every model file of ``weights`` (one or several), all with the same classes."""
    files = [weights] if isinstance(weights, (str, os.PathLike)) else list(weights)
    if not files:
        raise ValueError("no model file given (--weights)")
    models = [_load_one(f, device, precision) for f in files]
    for f, m in zip(files[1:], models[1:], strict=True):
        if m.class_names != models[0].class_names:
            raise ValueError(
                f"{f}: classes {m.class_names} differ from {files[0]}'s "
                f"{models[0].class_names}; an ensemble needs models of the same classes"
            )
    if max_det is not None:
        for f, m in zip(files, models, strict=True):
            if isinstance(m, ExportedDetector):
                raise ValueError(f"{f}: an exported model's --max-det is fixed; export it again")
            m.roi_heads.detections_per_img = int(max_det)
    return models


def _load_one(
    path: str | Path, device: str, precision: str = "fp32"
) -> FasterRCNN | ExportedDetector:
    """A model file (computing in ``precision``), or an ONNX (run by ONNX Runtime) or
    TorchScript model ``frcnn export`` wrote."""
    suffix = Path(path).suffix.lower()
    if suffix in (".onnx", ".torchscript") and precision != "fp32":
        raise ValueError(
            f"{path}: an exported model computes in the precision it was exported with; "
            "--precision is for frcnn model files"
        )
    if suffix == ".onnx":
        return OnnxDetector(path)
    if suffix == ".torchscript":
        return TorchScriptDetector(path)
    # Batch norms folded into the convolutions: the same detections, sooner.
    model = optimize(load_model(path, resolve_device(device)), copy_model=False)
    return with_precision(model, precision)


def _detector(
    models: list[FasterRCNN],
    tta: bool | Sequence[float],
    ensemble: MergeOptions | None,
    merge: str | None,
    calibrated: bool = False,
) -> FasterRCNN | MergedDetector | CalibratedDetector:
    """One model as it is (its scores calibrated when asked), or the models (and TTA views)
    fused into one detector."""
    if any(isinstance(m, ExportedDetector) for m in models) and (len(models) > 1 or tta or merge):
        raise ValueError(
            "ensembles, --tta and --merge take frcnn model files, not exported (ONNX or "
            "TorchScript) models"
        )
    if merge is not None:
        for m in models:
            m.roi_heads.merge = merge
    if calibrated and (len(models) > 1 or tta):
        raise ValueError(
            "calibrated scores are those of one model: leave out --tta and extra --weights, "
            "or calibrate the fused scores by hand"
        )
    if calibrated:
        return CalibratedDetector(models[0])
    if len(models) == 1 and not tta:
        return models[0]
    views = tta_views(TTA_SCALES if tta is True else tta) if tta else [View()]
    return MergedDetector(models, views, ensemble)


def predict(
    weights: str | Path | Sequence[str | Path],
    sources: Sequence[Any] | Any,
    conf: float = CONF,
    out: str | Path | None = None,
    save_images: bool = False,
    format: str = "json",
    tile: int | None = None,
    overlap: float = TILE_OVERLAP,
    batch_size: int = BATCH_SIZE,
    device: str = "auto",
    max_det: int | None = None,
    draw: dict[str, Any] | None = None,
    tta: bool | Sequence[float] = False,
    ensemble: MergeOptions | None = None,
    merge: str | None = None,
    calibrated: bool = False,
    precision: str = "fp32",
) -> list[Prediction]:
    """Detections for files, folders or globs, or for images in memory (a PIL image, an
    RGB NumPy array HxWx3, a tensor CHW in 0..1, or a list of them; named ``image<i>`` in the
    outputs), in original image coordinates. With ``out``,
    writes them in ``format`` (json, coco or csv) and, with ``save_images``, drawn images.
    Unreadable files are skipped with a warning; the others are predicted and written.
    ``max_det`` is the most detections kept per image (per tile when tiled). ``draw`` holds
    options of the drawn images: ``line_width`` (pixels), ``show_labels``, ``show_scores``.
    Videos and camera indices (``"0"``) give a :class:`Prediction` per frame
    (``<video>#frame<N>``) and, with ``out``, ``<stem>.mp4`` drawn and ``<stem>.frames.json``.

    Several ``weights`` files are an ensemble, fused per image as ``ensemble`` says
    (:class:`~frcnn.inference.ensemble.MergeOptions`: Weighted Boxes Fusion by default).
    ``tta`` (True, or a list of scales) also predicts a flipped copy and rescaled copies of
    each image, fused the same way. ``merge="mean"`` averages each model's NMS clusters
    into one box. One model without TTA is never fused (WBF of a single model scores worse
    than its NMS). ``calibrated`` maps each score by the calibration stored in the model
    file (``frcnn calibrate``); ``conf`` then applies to calibrated scores. ``precision="bf16"``
    runs the heavy layers in bfloat16 (faster, slightly different: :mod:`frcnn.deploy.precision`)."""
    if out is not None:
        out = Path(out)
        _check_writable(out)  # before the work, not after it
    models = _load_models(weights, device, max_det, precision)
    model = _detector(models, tta, ensemble, merge, calibrated)
    items = (
        [sources]
        if isinstance(sources, (str, os.PathLike)) or _in_memory(sources)
        else list(sources)
    )
    in_memory = [_in_memory(item) for item in items]
    if any(in_memory) and not all(in_memory):
        raise ValueError("predict: give paths or images in memory, not both in one call")
    if any(in_memory):
        results, frames = predict_arrays(model, items, conf, batch_size, tile, overlap), []
    else:
        video = {"out": out, "class_names": model.class_names, "fmt": format, "draw": draw}
        results, frames = _predict_paths(model, items, conf, batch_size, tile, overlap, video)
    if out is not None and (results or not frames):
        write_predictions(results, out, format, model.class_names)
        if save_images:
            save_drawn(results, out / "images", model.class_names, **(draw or {}))
    return results + frames


def _predict_paths(
    model: object,
    items: list,
    conf: float,
    batch_size: int,
    tile: int | None,
    overlap: float,
    video: dict,
) -> tuple[list[Prediction], list[Prediction]]:
    """Images (files, folders, globs) and, frame by frame, videos and cameras."""
    paths = [str(item) for item in items]
    images = [p for p in paths if not is_video(p)]
    results = _predict_files(model, images, conf, batch_size, tile, overlap)
    frames = [
        frame
        for path in paths
        if is_video(path)
        for frame in predict_video(model, path, conf, batch_size, tile, overlap, **video).frames
    ]
    return results, frames


def _predict_files(
    model: object,
    sources: list[str],
    conf: float,
    batch_size: int,
    tile: int | None,
    overlap: float,
) -> list[Prediction]:
    """Detections for image files, folders and globs; unreadable images skipped and counted."""
    if not sources:
        return []
    files = expand_sources(sources)
    skipped: list[tuple[Path, str]] = []
    results = predict_images(model, files, conf, batch_size, tile, overlap, skipped=skipped)
    if skipped:
        log.warning("%d of %d images skipped (see above)", len(skipped), len(files))
    return results


def _in_memory(item: object) -> bool:
    """An image object rather than a path: a PIL image, NumPy array or tensor."""
    return not isinstance(item, (str, os.PathLike, list, tuple))


def _check_writable(folder: Path) -> None:
    """Create ``folder`` and make sure a file can be written there.

    Raises:
        ValueError: naming the folder and the reason.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".frcnn-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(
            f"cannot write to the output folder {folder}: {err.strerror or err}"
        ) from None
