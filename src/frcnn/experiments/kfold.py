"""``frcnn kfold``: K-fold cross-validation by image. Each fold trains a fresh model (its own
run folder, optimiser and loaders) on the other folds and predicts the images it held
out; the out-of-fold predictions cover every image exactly once and feed
:mod:`.label_issues`.

The folder (``--out``, numbered if taken):
``folds.csv`` (image, group, fold), ``fold<k>/`` (a ``frcnn train`` run folder),
``fold_data/fold<k>/{train,val}.json`` (the fold's annotations), ``fold_results/fold<k>.json``
(its scores and out-of-fold predictions, what collecting reads), ``summary.csv`` (per fold and mean ± std
of mAP, mAP50, F1, score), ``oof_predictions.json`` (COCO results with the image list,
what ``frcnn eval --predictions`` and ``frcnn label-issues`` read), ``oof/`` (metrics of
all out-of-fold predictions together) and ``label_issues/``.
"""

from __future__ import annotations

import copy
import csv
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
from ..engine.distributed import DistInfo, broadcast, init_distributed
from ..engine.run_folder import run_folder, setup_logging
from ..engine.trainer import train, validation_options
from ..errors import InputError
from ..evaluation.coco import coco_results, read_coco_results
from ..evaluation.report import EvalResult, evaluate_detections
from ..evaluation.write import write_evaluation
from ..inference.compose import load_detector
from ..inference.options import detection_limit
from ..inference.predict import predict_dataset
from ..io.atomic import atomic_write_csv, atomic_write_text
from .folds import fold_subsets, group_keys, images_where, kfold_assign

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
    fold: int | None = None,
    collect: bool = False,
) -> KFoldResult | None:
    """Cross-validate ``cfg`` (its ``data.train`` is split; ``run.seed`` seeds the split)
    over ``folds`` folds grouped by ``group_by`` (see :func:`.folds.group_keys`).

    Folds can run as separate jobs: ``fold=K`` (1-based) trains only fold K into ``out``
    (used as given, shared by the jobs; the folds made identically from the seed, checked
    against ``folds.csv``) and keeps its out-of-fold predictions in ``fold_results/``. The
    summary, the out-of-fold evaluation and the label issues are written once every fold's
    results are there (by the job that completes them), or with ``collect`` from the folds
    present. Returns None for a fold job that leaves folds to others.

    Under torchrun every rank runs this: each fold trains on all ranks, the ranks share its
    out-of-fold prediction, and rank 0 alone writes (the result is every rank's).

    Raises:
        ValueError: ``data.val`` is set (K-fold makes its own), images come from memory,
            ``fold`` out of range, or a shared folder whose folds differ from these.
    """
    ds = _kfold_data(cfg)
    assign = kfold_assign(ds, folds, group_by, cfg.run.seed)
    if fold is not None and not 1 <= fold <= folds:
        raise InputError(f"--fold {fold}: choose 1..{folds}")
    info = init_distributed()  # kept across the folds' trainings
    shared = fold is not None or collect
    out = Path(out) if shared or not info.is_main else run_folder(str(out), resume=False)
    out = Path(broadcast(str(out), info))
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        _write_folds(out, ds, assign, group_keys(ds, group_by), shared)
    setup_logging(out if info.is_main else None, info)  # each fold logs to its own log.txt
    log.info(
        "%d-fold cross-validation of %d images into %s: %s images held out per fold",
        folds,
        len(ds),
        out,
        ", ".join(str(int((assign == k).sum())) for k in range(folds)),
    )
    todo = [fold - 1] if fold is not None else [] if collect else range(folds)
    for k in todo:
        _one_fold(cfg, ds, assign, k, out, info)
    result = _finish(cfg, ds, assign, out, fold, collect, label_issues) if info.is_main else None
    return broadcast(result, info)  # rank 0 collects


def _finish(
    cfg: TrainConfig,
    ds: DetectionDataset,
    assign: np.ndarray,
    out: Path,
    fold: int | None,
    collect: bool,
    label_issues: bool,
) -> KFoldResult | None:
    """The collected result once every fold is there (or with ``collect``); else None."""
    folds = int(assign.max()) + 1
    done = [k for k in range(folds) if _results_file(out, k).is_file()]
    if len(done) < folds and not collect:
        missing = [k + 1 for k in range(folds) if k not in done]
        log.info(
            "fold %s done; waiting for folds %s (the job finishing the last one writes the "
            "summary; `frcnn kfold --collect` writes it from the folds present)",
            fold,
            missing,
        )
        return None
    return _collect(cfg, ds, assign, done, out, label_issues)


def _collect(
    cfg: TrainConfig,
    ds: DetectionDataset,
    assign: np.ndarray,
    done: list[int],
    out: Path,
    label_issues: bool,
) -> KFoldResult:
    """The summary, out-of-fold predictions and evaluation and label issues of the folds in
    ``done``, from their saved results."""
    if not done:
        raise InputError(f"{out}: no fold has finished yet (no fold_results/)")
    folds = int(assign.max()) + 1
    if len(done) < folds:
        log.warning(
            "warning: collecting %d of %d folds (%s missing): the out-of-fold numbers cover "
            "only the images those folds held out",
            len(done),
            folds,
            ", ".join(str(k + 1) for k in range(folds) if k not in done),
        )
    rows, oof, runs = [], [], []
    for k in done:
        held = fold_subsets(ds, assign, k)[1]
        saved = json.loads(_results_file(out, k).read_text())
        rows.append(saved["row"])
        runs.append(Path(saved["run"]))
        oof += read_coco_results(_results_file(out, k), held)
    if len(done) < folds:
        ds = images_where(ds, np.isin(assign, done))
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


def _results_file(out: Path, k: int) -> Path:
    """Where fold ``k`` (0-based) keeps its scores and out-of-fold predictions."""
    return out / "fold_results" / f"fold{k + 1}.json"


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
    cfg: TrainConfig, ds: DetectionDataset, assign: np.ndarray, k: int, out: Path, info: DistInfo
) -> None:
    """Train fold ``k`` into ``out/fold<k+1>``, predict its held-out images (shared by the
    ranks) and keep the predictions and scores in ``out/fold_results/`` (rank 0)."""
    folder = out / f"fold{k + 1}"
    kept, held = fold_subsets(ds, assign, k)
    files = {}
    for split, part in (("train", kept), ("val", held)):
        files[split] = out / "fold_data" / f"fold{k + 1}" / f"{split}.json"
        names = {
            i: os.path.relpath(r.path, ds.root).replace(os.sep, "/")
            for i, r in enumerate(part.images)
        }
        if info.is_main:
            write_coco(part, files[split], names)
    broadcast(None, info)  # the fold's files are written before any rank reads them
    fold_cfg = copy.deepcopy(cfg)
    fold_cfg.data.train, fold_cfg.data.val = str(files["train"]), str(files["val"])
    fold_cfg.data.format, fold_cfg.data.images = "coco", str(ds.root)
    fold_cfg.run.out, fold_cfg.run.resume = str(folder), False
    fold_cfg.run.group = cfg.run.group or out.name  # trackers: the folds as one group
    log.info(
        "fold %d/%d: training on %d images, holding out %d",
        k + 1,
        assign.max() + 1,
        len(kept),
        len(held),
    )
    result = train(fold_cfg)
    setup_logging(out, info)  # back to the cross-validation's log: fold<k>/ ends here
    options = validation_options(cfg)
    detector = load_detector(result.best or result.last, options, info)
    preds = predict_dataset(detector, held, options, cfg.data.exif, info)
    if not info.is_main:
        return
    scored = evaluate_detections(
        held,
        preds,
        options.threshold(detector),
        tuple(cfg.eval.score_weights),
        detection_limit(options, detector),
    )
    metrics = {name: float(scored.to_json()[key]) for name, key in METRICS}
    row = {"fold": k + 1, "images": len(held), **metrics}
    extra = {"row": row, "run": str(result.out)}
    _write_oof(_results_file(out, k), held, preds, cfg.eval.conf, extra)


def _write_folds(
    out: Path, ds: DetectionDataset, assign: np.ndarray, keys: list[str], shared: bool
) -> None:
    """``folds.csv``; in a folder shared by fold jobs, the one there must say the same.

    Raises:
        ValueError: a shared folder whose folds.csv assigns other folds.
    """
    rows = [
        {"file_name": r.file_name, "image_id": int(r.image_id), "group": g, "fold": int(f) + 1}
        for r, g, f in zip(ds.images, keys, assign, strict=True)
    ]
    path = out / "folds.csv"
    columns = ["file_name", "image_id", "group", "fold"]
    if shared and path.is_file():
        with path.open(newline="", encoding="utf-8") as f:
            there = [{k: row[k] for k in columns} for row in csv.DictReader(f)]
        if there != [{k: str(row[k]) for k in columns} for row in rows]:
            raise InputError(
                f"{path} assigns other folds than these data, --folds, --group-by and seed: "
                "every fold job of one folder needs the same ones"
            )
        return
    atomic_write_csv(path, columns, rows)


def _write_oof(
    path: Path, ds: DetectionDataset, preds: list[dict], conf: float, extra: dict | None = None
) -> Path:
    """COCO results of every image with the image list (ids are the dataset's own) and the
    threshold the folds' models were scored at (``frcnn label-issues`` counts at it), plus
    ``extra`` keys."""
    images = [
        {"id": int(r.image_id), "file_name": r.file_name, "width": r.width, "height": r.height}
        for r in ds.images
    ]
    body = {"images": images, "annotations": coco_results(preds), "conf": conf, **(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
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
