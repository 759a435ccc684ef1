"""``frcnn kfold``: K-fold cross-validation by image. Each fold trains a fresh model (its own
run folder, optimiser and loaders) on the other folds and predicts the images it held
out; the out-of-fold predictions cover every image exactly once and feed
:mod:`.label_issues`.

The folder (``--out``, numbered if taken):
``folds.csv`` (image, group, fold), ``fold<k>/`` (a ``frcnn train`` run folder),
``fold_data/fold<k>/{train,val}.json`` (the fold's annotations), ``summary.csv`` (per fold and mean ± std
of mAP, mAP50, F1, score), ``oof_predictions.json`` (COCO results with the image list,
what ``frcnn eval --predictions`` and ``frcnn label-issues`` read), ``oof/`` (metrics of
all out-of-fold predictions together) and ``label_issues/``.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import TrainConfig
from ..data.check import check_dataset, warn_skipped
from ..data.coco import write_coco
from ..data.records import DetectionDataset
from ..data.sources import read_dataset
from ..engine.distributed import DistInfo
from ..engine.run_folder import run_folder, setup_logging
from ..engine.trainer import train, validation_options
from ..errors import InputError
from ..evaluation.coco import coco_results
from ..evaluation.report import EvalResult, evaluate_detections
from ..evaluation.write import write_evaluation
from ..inference.compose import load_detector
from ..inference.options import detection_limit
from ..inference.predict import predict_dataset
from ..io.atomic import atomic_write_csv, atomic_write_text
from .folds import fold_subsets, group_keys, kfold_assign

log = logging.getLogger("frcnn")

METRICS = (("mAP", "AP"), ("mAP50", "AP50"), ("F1", "F1_at_conf"), ("score", "score"))


@dataclass
class KFoldResult:
    """Where a K-fold run went and what each fold scored (metrics of its held-out images)."""

    out: Path
    folds: list[dict[str, float]]
    oof_predictions: Path
    oof_metrics: EvalResult
    label_issues: Path | None = None
    runs: list[Path] = field(default_factory=list)

    def mean_std(self, key: str) -> tuple[float, float]:
        values = [f[key] for f in self.folds]
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    def table(self) -> str:
        """The per-fold table with a mean ± std row, as ``frcnn kfold`` prints it."""
        keys = [k for k, _ in METRICS]
        lines = [f"{'fold':>6} {'images':>7} " + " ".join(f"{k:>15}" for k in keys)]
        for f in self.folds:
            cells = " ".join(f"{f[k]:>15.4f}" for k in keys)
            lines.append(f"{int(f['fold']):>6} {int(f['images']):>7} {cells}")
        stats = [self.mean_std(k) for k in keys]
        cells = " ".join(f"{f'{m:.4f} ± {s:.4f}':>15}" for m, s in stats)
        lines.append(f"{'mean':>6} {sum(int(f['images']) for f in self.folds):>7} {cells}")
        return "\n".join(lines)


def run_kfold(
    cfg: TrainConfig,
    folds: int = 5,
    group_by: str | None = None,
    out: str | Path = "runs/kfold",
    label_issues: bool = True,
) -> KFoldResult:
    """Cross-validate ``cfg`` (its ``data.train`` is split; ``run.seed`` seeds the split)
    over ``folds`` folds grouped by ``group_by`` (see :func:`.folds.group_keys`).

    Raises:
        ValueError: ``data.val`` is set (K-fold makes its own), or images come from memory.
    """
    ds = _kfold_data(cfg)
    assign = kfold_assign(ds, folds, group_by, cfg.run.seed)
    out = run_folder(str(out), resume=False)
    out.mkdir(parents=True, exist_ok=True)
    setup_logging(out, DistInfo())  # the folds' own lines go to their own log.txt
    _write_folds(out, ds, assign, group_keys(ds, group_by))
    log.info(
        "%d-fold cross-validation of %d images into %s: %s images held out per fold",
        folds,
        len(ds),
        out,
        ", ".join(str(int((assign == k).sum())) for k in range(folds)),
    )
    rows, oof, runs = [], [], []
    for k in range(folds):
        run, preds, metrics = _one_fold(cfg, ds, assign, k, out)
        runs.append(run)
        oof += preds
        rows.append({"fold": k + 1, "images": int((assign == k).sum()), **metrics})
    oof_file = _write_oof(out / "oof_predictions.json", ds, oof, cfg.eval.conf)
    e = cfg.eval
    max_dets = e.max_dets or 100
    oof_metrics = evaluate_detections(
        ds, oof, e.conf, tuple(e.score_weights), max_dets, e.size_bins
    )
    title = f"frcnn kfold {out.name}: every image predicted by the model that did not train on it"
    write_evaluation(
        oof_metrics, ds, out / "oof", title, (), max_dets, cfg.data.exif, e.worst_images
    )
    result = KFoldResult(out, rows, oof_file, oof_metrics, runs=runs)
    _write_summary(out / "summary.csv", result)
    if label_issues:  # at the folds' models' threshold, as every count here
        ap50 = float(oof_metrics.coco["AP50"])
        result.label_issues = _label_issues(ds, oof, out / "label_issues", cfg.eval.conf, ap50)
    return result


def _kfold_data(cfg: TrainConfig) -> DetectionDataset:
    """The checked images to split into folds (files, not images in memory)."""
    d = cfg.data
    if d.val:
        raise InputError("kfold splits --data into folds itself; leave out --val")
    if not d.train:
        raise InputError("no data: pass --data DATA")
    ds, report = check_dataset(
        read_dataset(d.train, d.format, None, d.images, d.exif), "header", d.exif
    )
    warn_skipped(report, str(d.train))
    if any(r.path is None for r in ds.images):
        raise InputError(
            f"kfold needs image files; {d.train} streams images from memory. Write it to a "
            "folder first: frcnn data convert DATA --to coco OUT"
        )
    return ds


def _label_issues(
    ds: DetectionDataset, oof: list[dict], out: Path, conf: float, ap50: float
) -> Path:
    """The likely annotation errors the out-of-fold predictions reveal, written to ``out``."""
    from .label_issues import find_label_issues, write_label_issues

    issues = find_label_issues(ds, oof, conf)
    return write_label_issues(issues, ds, oof, out, conf=conf, ap50=ap50)


def _one_fold(
    cfg: TrainConfig, ds: DetectionDataset, assign: np.ndarray, k: int, out: Path
) -> tuple[Path, list[dict], dict[str, float]]:
    """Train fold ``k`` into ``out/fold<k+1>`` and predict its held-out images."""
    folder = out / f"fold{k + 1}"
    kept, held = fold_subsets(ds, assign, k)
    files = {}
    for split, part in (("train", kept), ("val", held)):
        files[split] = out / "fold_data" / f"fold{k + 1}" / f"{split}.json"
        names = {
            i: os.path.relpath(r.path, ds.root).replace(os.sep, "/")
            for i, r in enumerate(part.images)
        }
        write_coco(part, files[split], names)
    fold_cfg = copy.deepcopy(cfg)
    fold_cfg.data.train, fold_cfg.data.val = str(files["train"]), str(files["val"])
    fold_cfg.data.format, fold_cfg.data.images = "coco", str(ds.root)
    fold_cfg.run.out, fold_cfg.run.resume = str(folder), False
    log.info(
        "fold %d/%d: training on %d images, holding out %d",
        k + 1,
        assign.max() + 1,
        len(kept),
        len(held),
    )
    result = train(fold_cfg)
    setup_logging(out, DistInfo())  # back to the cross-validation's log: fold<k>/ ends here
    options = validation_options(cfg)
    detector = load_detector(result.best or result.last, options)
    preds = predict_dataset(detector, held, options, cfg.data.exif)
    scored = evaluate_detections(
        held,
        preds,
        options.threshold(detector),
        tuple(cfg.eval.score_weights),
        detection_limit(options, detector),
    )
    metrics = {name: float(scored.to_json()[key]) for name, key in METRICS}
    return result.out, preds, metrics


def _write_folds(out: Path, ds: DetectionDataset, assign: np.ndarray, keys: list[str]) -> None:
    rows = [
        {"file_name": r.file_name, "image_id": int(r.image_id), "group": g, "fold": int(f) + 1}
        for r, g, f in zip(ds.images, keys, assign, strict=True)
    ]
    atomic_write_csv(out / "folds.csv", ["file_name", "image_id", "group", "fold"], rows)


def _write_oof(path: Path, ds: DetectionDataset, preds: list[dict], conf: float) -> Path:
    """COCO results of every image with the image list (ids are the dataset's own) and the
    threshold the folds' models were scored at (``frcnn label-issues`` counts at it)."""
    images = [
        {"id": int(r.image_id), "file_name": r.file_name, "width": r.width, "height": r.height}
        for r in ds.images
    ]
    body = {"images": images, "annotations": coco_results(preds), "conf": conf}
    return atomic_write_text(path, json.dumps(body))


def _write_summary(path: Path, result: KFoldResult) -> None:
    keys = [k for k, _ in METRICS]
    rows: list[dict] = [dict(f) for f in result.folds]
    stats = {k: result.mean_std(k) for k in keys}
    rows.append(
        {
            "fold": "mean",
            "images": sum(f["images"] for f in result.folds),
            **{k: round(stats[k][0], 6) for k in keys},
        }
    )
    rows.append({"fold": "std", "images": "", **{k: round(stats[k][1], 6) for k in keys}})
    oof = result.oof_metrics.to_json()
    rows.append({"fold": "out-of-fold", "images": "", **{k: oof[key] for k, key in METRICS}})
    atomic_write_csv(path, ["fold", "images", *keys], rows)
