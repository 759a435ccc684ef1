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
from .engine.distributed import DistInfo
from .engine.hooks import Callback
from .engine.trainer import TrainResult
from .engine.trainer import train as _train
from .errors import InputError
from .evaluation.coco import read_coco_results
from .evaluation.report import EvalOptions, EvalResult, evaluate_detections
from .evaluation.write import write_evaluation
from .inference.compose import load_detector
from .inference.options import InferenceOptions, check_keywords, detection_limit, take_fields
from .inference.outputs import save_drawn, write_predictions
from .inference.predict import (
    Prediction,
    expand_sources,
    predict_arrays,
    predict_dataset,
    predict_images,
)
from .inference.ranks import from_main, inference_ranks
from .inference.video import is_video, predict_video
from .modeling.detector import FasterRCNN

log = logging.getLogger("frcnn")


def build_model(
    name: str,
    num_classes: int | None = None,
    *,
    weights: str | None = None,
    class_names: Sequence[str] | None = None,
    **overrides: Any,
) -> FasterRCNN:
    """Build a registered detector, optionally from COCO-trained weights.

    Args:
        name: one of :data:`frcnn.MODELS` (``resnet50_fpn``, ``resnet50_fpn_v2`` ...).
        num_classes: classes including background (default: one more than ``class_names``;
            with ``weights="coco"`` and no names, COCO's 91).
        weights: None (random initialisation, or ``pretrained_backbone`` in ``overrides``)
            or ``"coco"``: the model's COCO weights as torchvision publishes them (fetched
            into the torch hub cache). Without ``class_names`` that is the COCO detector
            itself (its 80 classes named, in eval mode); with them, a detector for those
            classes whose box predictor is new, except the rows of classes named like a COCO
            category (``keep_coco_classes=False`` turns that off); frozen BatchNorm and 3
            trainable backbone stages unless ``overrides`` say otherwise.
        class_names: names of classes 1..K-1 (stored in ``model.class_names``).
        **overrides: any :class:`~frcnn.ModelConfig` field, e.g. ``min_size=512``.

    Returns:
        A :class:`~frcnn.FasterRCNN` with ``model.config`` set (in training mode unless it
        is the COCO detector itself).
    """
    from .engine.model import load_initial_weights
    from .io.zoo import coco_model
    from .modeling.builder import build_model as build_registered

    if class_names is not None and num_classes is None:
        num_classes = len(class_names) + 1
    if weights is None:
        if num_classes is None:
            raise InputError("build_model: give num_classes (or class_names)")
        model = build_registered(name, num_classes, **overrides)
    elif weights != "coco":
        raise InputError(f"build_model: weights={weights!r}; give None or 'coco'")
    elif class_names is None and num_classes in (None, 91):
        return coco_model(f"coco:{name}", overrides)
    else:
        if class_names is None:
            raise InputError("build_model: weights='coco' for other classes needs class_names")
        settings = {"norm": "frozen_bn", "trainable_backbone_layers": 3, **overrides}
        model = build_registered(name, num_classes, **settings)
    if class_names is not None:
        model.class_names = list(class_names)
    if weights == "coco":  # after the names: rows are copied by them
        load_initial_weights(model, f"coco:{name}")
    return model


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


Weights = str | Path | Sequence[str | Path]


def evaluate(
    weights: Weights | None = None,
    data: str | Path | None = None,
    options: InferenceOptions | None = None,
    *,
    split: str | None = None,
    format: str | None = None,
    out: str | Path | None = None,
    predictions: str | Path | None = None,
    dataset: DetectionDataset | None = None,
    run: str | Path | None = None,
    scoring: EvalOptions | None = None,
    allow_mismatch: bool = False,
    **values: Any,
) -> EvalResult:
    """Evaluate model files on a dataset, or score an existing COCO results file
    (``predictions``) without a model.

    ``options`` (:class:`~frcnn.inference.options.InferenceOptions`) say how the detector
    is composed and run: threshold ``conf`` (default: the model file's), ``max_det``,
    ``tile``/``overlap``, ``batch_size``, ``precision``, ``tta``, ``merge``, ``ensemble``,
    ``calibrated``, ``device``; ``scoring`` (:class:`~frcnn.evaluation.report.EvalOptions`)
    the per-size bins, score weights and worst images. Their fields may also be given as
    keywords (``evaluate(w, d, conf=0.5, tile=512, worst=4)``). ``weights`` may name
    several model files (an ensemble). With ``out``, writes ``metrics.json``, the CSV
    tables, the plots, the worst images and ``report.html``. A model whose class names
    differ from the data's is an error unless ``allow_mismatch``. ``dataset`` is checked
    ground truth to use instead of reading ``data``. ``run`` (a run folder) scores the
    validation images that run recorded, with its best weights, tiled, limited and counted
    as it was trained; given options still override."""
    options, rest = take_fields(values, options or InferenceOptions())
    scoring, rest = take_fields(rest, scoring or EvalOptions())
    check_keywords(rest, "evaluate", InferenceOptions, EvalOptions)
    if predictions is not None and options.calibrated:
        raise InputError("calibrated scores need the model (--weights), not a results file")
    data_lines: list[str] = []  # the data checks' summary, for the report
    if run is not None:
        dataset, weights, options = _run_validation(run, weights, options)
    if dataset is None:
        dataset, data_lines = _checked(data, format, split)
    ranks = DistInfo()  # a results file is scored where it is
    if predictions is not None:
        preds = read_coco_results(predictions, dataset)
        conf, max_det = options.threshold(None), options.max_det or 100
    else:
        if weights is None:
            raise InputError("evaluate needs weights or a predictions file")
        ranks = inference_ranks()
        preds, conf, max_det = _model_predictions(weights, dataset, options, allow_mismatch)
    s = scoring
    result = None
    if ranks.is_main:  # the others have the same detections; rank 0 scores and writes
        result = evaluate_detections(dataset, preds, conf, s.score_weights, max_det, s.size_bins)
    if out is not None and ranks.is_main:
        title = f"frcnn eval: {predictions or weights} on {data or run}"
        write_evaluation(
            result, dataset, out, title, data_lines, max_det, True, s.worst, s.worst_by
        )
    return from_main(result, ranks)


def _model_predictions(
    weights: Weights, dataset: DetectionDataset, options: InferenceOptions, allow_mismatch: bool
) -> tuple[list[dict], float, int]:
    """The detections evaluation scores (shared by the ranks of a torchrun job), the
    threshold and the detection limit."""
    ranks = inference_ranks()
    detector = by_class_name(load_detector(weights, options, ranks), dataset, allow_mismatch)
    preds = predict_dataset(detector, dataset, options, ranks=ranks)
    return preds, options.threshold(detector), detection_limit(options, detector)


def _checked(
    data: str | Path | None, format: str | None, split: str | None
) -> tuple[DetectionDataset, list[str]]:
    """The dataset read and checked, and the checks' summary (also logged)."""
    if data is None:
        raise InputError("evaluate needs data (--data) or a run (--run)")
    dataset, report = check_dataset(read_dataset(data, format, split), "header")
    lines = report.summary_lines()
    for line in lines:
        log.info("  %s", line)
    return dataset, lines


def _run_validation(
    run: str | Path, weights: Weights | None, options: InferenceOptions
) -> tuple[DetectionDataset, Weights, InferenceOptions]:
    """A run's recorded validation images, best weights, tiling, detection limit and
    threshold (what ``options`` leave unset)."""
    from .engine.val_split import read_run_validation

    recorded = read_run_validation(run)
    d, e = recorded.config.data, recorded.config.eval
    weights = weights or recorded.weights
    log.info("run %s: %d validation images, weights %s", run, len(recorded.dataset), weights)
    tiled = {"tile": d.tile, "overlap": d.overlap} if options.tile is None else {}
    return (
        recorded.dataset,
        weights,
        options.replace(
            **tiled,
            max_det=options.max_det or e.max_dets,
            conf=options.conf if options.conf is not None else e.conf,
        ),
    )


def by_class_name(detector: Any, ds: DetectionDataset, allow_mismatch: bool) -> Any:
    """The detector scored in the data's classes: as it is when its classes are the data's;
    relabelled by name when every data class is one of the model's (case and synonyms as in
    fine-tuning: a COCO model on data of a few COCO classes; the model's other classes are
    left out); else its labels compared by number, which ``allow_mismatch`` must allow.

    Raises:
        ValueError: classes that differ and do not all match, without ``allow_mismatch``.
    """
    from .inference.detectors import RelabelledDetector
    from .modeling.class_rows import matching_classes

    names = detector.class_names
    if not names or list(names) == ds.class_names:
        return detector
    rows = matching_classes(names, ds.class_names)
    if len(rows) == len(ds.class_names):
        import torch

        lookup = torch.full((len(names) + 1,), -1, dtype=torch.long)
        lookup[0] = 0
        lookup[list(rows.values())] = torch.tensor(list(rows))
        pairs = ", ".join(f"{names[m - 1]} -> {ds.class_names[d - 1]}" for d, m in rows.items())
        left = len(names) - len(rows)
        log.info("scoring the model's classes by name: %s (%d more left out)", pairs, left)
        return RelabelledDetector(detector, lookup, ds.class_names)
    message = f"model classes {list(names)} differ from the data's {ds.class_names}"
    if not allow_mismatch:
        raise InputError(
            f"{message}; labels would be compared by number. Pass --allow-mismatch "
            "(allow_mismatch=True) to score them anyway"
        )
    log.warning("%s; scoring labels by number as asked", message)
    return detector


def calibrate(
    weights: str | Path,
    data: str | Path,
    options: InferenceOptions | None = None,
    *,
    method: str = "isotonic",
    split: str | None = None,
    format: str | None = None,
    out: str | Path | None = None,
    **values: Any,
) -> dict[str, Any]:
    """Fit a score calibration (``isotonic``, or ``temperature``: see
    :func:`frcnn.evaluation.calibration.fit_calibration`) on ``data``, images the model did
    not train on, predicted as ``options`` (or their keywords) say, and write the model with
    it to ``out`` (default: ``<weights>`` with ``.calibrated`` before the suffix).
    ``predict(..., calibrated=True)`` then reports calibrated scores (given either file).
    Returns the calibration, the ECE before and after (on ``data``) and the path written."""
    from .evaluation.calibration import apply_calibration, fit_calibration, reliability
    from .inference.compose import calibrated_path
    from .io.model_file import load_model, save_model

    weights = Path(weights)
    out = Path(out) if out else calibrated_path(weights)
    options, rest = take_fields(values, options or InferenceOptions())
    check_keywords(rest, "calibrate", InferenceOptions)
    result = evaluate(weights, data, options.replace(calibrated=False), split=split, format=format)
    d = result.detections
    calibration = fit_calibration(d["scores"], d["correct"], method)
    after = reliability(apply_calibration(calibration, d["scores"]), d["correct"])
    if inference_ranks().is_main:
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


def predict(
    weights: Weights,
    sources: Sequence[Any] | Any,
    options: InferenceOptions | None = None,
    *,
    out: str | Path | None = None,
    save_images: bool = False,
    format: str = "json",
    draw: dict[str, Any] | None = None,
    **values: Any,
) -> list[Prediction]:
    """Detections for files, folders or globs, or for images in memory (a PIL image, an
    RGB NumPy array HxWx3, a tensor CHW in 0..1, or a list of them; named ``image<i>`` in the
    outputs), in original image coordinates, scoring at least the threshold (``conf``;
    default: the model file's, else 0.25).

    ``options`` (:class:`~frcnn.inference.options.InferenceOptions`, or its fields as
    keywords: ``conf``, ``max_det``, ``tile``, ``overlap``, ``batch_size``, ``precision``,
    ``tta``, ``merge``, ``ensemble``, ``calibrated``, ``device``) say how the detector is
    composed. Several ``weights`` files are an ensemble, fused per image as ``ensemble``
    says (:class:`~frcnn.inference.options.MergeOptions`: Weighted Boxes Fusion by default).
    ``tta`` (True, or a list of scales) also predicts a flipped copy and rescaled copies of
    each image, fused the same way. ``merge="mean"`` averages each model's NMS clusters
    into one box. One model without TTA is never fused (WBF of a single model scores worse
    than its NMS). ``calibrated`` maps each score by the calibration stored in the model
    file (``frcnn calibrate``); ``conf`` then applies to calibrated scores.
    ``precision="bf16"`` runs the heavy layers in bfloat16 (faster, slightly different).

    With ``out``, writes the detections in ``format`` (json, coco or csv) and, with
    ``save_images``, drawn images; ``draw`` holds ``line_width`` (pixels), ``show_labels``,
    ``show_scores``. Unreadable files are skipped with a warning; the others are predicted
    and written. Videos and camera indices (``"0"``) give a :class:`Prediction` per frame
    (``<video>#frame<N>``) and, with ``out``, ``<stem>.mp4`` drawn and
    ``<stem>.frames.json``. A prediction never depends on the other images of the call."""
    options, rest = take_fields(values, options or InferenceOptions())
    check_keywords(rest, "predict", InferenceOptions)
    items, in_memory = _items(sources)
    # Files are shared by the ranks of a torchrun job; images in memory are each rank's own.
    ranks = DistInfo() if in_memory else inference_ranks()
    if out is not None:
        out = Path(out)
        if ranks.is_main:
            _check_writable(out)  # before the work, not after it
    detector = load_detector(weights, options, ranks)
    if in_memory:
        results, frames = predict_arrays(detector, items, options), []
    else:
        video = {"out": out, "fmt": format, "draw": draw}
        paths = [str(i) for i in items]
        results, frames = _predict_paths(detector, paths, options, video, ranks)
    if out is not None and (results or not frames) and ranks.is_main:
        write_predictions(results, out, format, detector.class_names)
        if save_images:
            drawing = {"conf": options.threshold(detector), **(draw or {})}
            save_drawn(results, out / "images", detector.class_names, **drawing)
    return results + frames


def _items(sources: Sequence[Any] | Any) -> tuple[list[Any], bool]:
    """The sources as a list, and whether they are images in memory (not paths).

    Raises:
        ValueError: paths and images in memory mixed.
    """
    items = (
        [sources]
        if isinstance(sources, (str, os.PathLike)) or _in_memory(sources)
        else list(sources)
    )
    in_memory = [_in_memory(item) for item in items]
    if any(in_memory) and not all(in_memory):
        raise InputError("predict: give paths or images in memory, not both in one call")
    return items, any(in_memory)


def _predict_paths(
    detector: object, paths: list[str], options: InferenceOptions, video: dict, ranks: DistInfo
) -> tuple[list[Prediction], list[Prediction]]:
    """Images (files, folders, globs) and, frame by frame, videos and cameras."""
    images = [p for p in paths if not is_video(p)]
    if ranks.enabled and len(images) < len(paths):
        raise InputError(
            "predict videos and cameras in one process: torchrun shares image files only"
        )
    results = _predict_files(detector, images, options, ranks)
    frames = [
        frame
        for path in paths
        if is_video(path)
        for frame in predict_video(detector, path, options, **video).frames
    ]
    return results, frames


def _predict_files(
    detector: object, sources: list[str], options: InferenceOptions, ranks: DistInfo
) -> list[Prediction]:
    """Detections for image files, folders and globs; unreadable images skipped and counted."""
    if not sources:
        return []
    files = expand_sources(sources)
    skipped: list[tuple[Path, str]] = []
    results = predict_images(detector, files, options, skipped=skipped, ranks=ranks)
    if skipped and ranks.is_main:
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
        raise InputError(
            f"cannot write to the output folder {folder}: {err.strerror or err}"
        ) from None
