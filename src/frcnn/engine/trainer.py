"""``frcnn train``: data -> model -> epochs of training and validation -> a run folder.

The run folder (``run.out``): ``config.yaml``, ``results.csv``, ``log.txt``, TensorBoard
events (when tensorboard is installed), ``weights/{best,last}.safetensors`` plus the top-k
``weights/epoch<N>.safetensors``, ``weights/last.state.pt`` (optimiser, scheduler, RNG
states for ``--resume``), ``metrics.json`` and the plots.
"""

from __future__ import annotations

import csv
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from ..config import TrainConfig
from ..data.augment import Augmenter
from ..data.check import DataReport, check_dataset
from ..data.loader import DetectionTorchDataset, RepeatFactorSampler, collate
from ..data.records import DetectionDataset
from ..data.sources import list_splits, read_dataset
from ..data.tiles import TiledDataset
from ..evaluation.report import EvalResult, evaluate_detections
from ..io.checkpoint import atomic_torch_save, load_state_dict_file, load_training_state
from ..io.model_file import load_model, read_metadata, save_model
from ..modeling.builder import build_model
from ..modeling.detector import FasterRCNN
from .distributed import DistInfo, all_gather_list, broadcast, cleanup, init_distributed
from .loop import (
    LRSchedule,
    StepOptions,
    build_optimizer,
    predict_batches,
    resolve_device,
    train_one_epoch,
)

log = logging.getLogger("frcnn")

RESULT_COLUMNS = [
    "epoch",
    "lr",
    "mAP",
    "mAP50",
    "mAP75",
    "precision",
    "recall",
    "F1",
    "score",
    "seconds",
]


@dataclass
class TrainResult:
    """What ``frcnn train`` prints at the end."""

    out: Path
    best: Path | None
    last: Path
    epochs: int
    best_epoch: int | None
    metrics: dict = field(default_factory=dict)
    data_report: DataReport | None = None


def _setup_logging(out: Path | None, info: DistInfo) -> None:
    log.setLevel(logging.INFO if info.is_main else logging.WARNING)
    if out is not None and info.is_main:
        for h in list(log.handlers):
            if isinstance(h, logging.FileHandler):
                log.removeHandler(h)
        handler = logging.FileHandler(out / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    if not any(
        isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
        for h in log.handlers
    ):
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(stream)
    log.propagate = False


def _run_folder(path: str, resume: bool) -> Path:
    """``path``, or ``path2``, ``path3`` ... when it is taken and this is not a resume."""
    out = Path(path)
    if resume or not out.exists() or not any(out.iterdir()):
        return out
    n = 2
    while Path(f"{path}{n}").exists():
        n += 1
    return Path(f"{path}{n}")


def _seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (third-party code may use the global RNG)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _rng_state() -> dict:
    np_state = np.random.get_state()  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def load_datasets(
    cfg: TrainConfig,
) -> tuple[DetectionDataset, DetectionDataset, DataReport, DataReport | None]:
    """Read and check the training (and validation) data; split off validation when none."""
    if not cfg.data.train:
        raise ValueError("no training data: pass --data DATA (or data.train in the config)")
    d = cfg.data
    train, train_report = check_dataset(
        read_dataset(d.train, d.format, None, d.images, d.exif), "header", d.exif
    )
    if d.val:
        # --val naming the training source means its "val" split (e.g. a YOLO data.yaml).
        split = "val" if d.val == d.train and "val" in list_splits(d.val, d.format) else None
        val, val_report = check_dataset(
            read_dataset(d.val, d.format, split, d.images, d.exif), "header", d.exif
        )
        if val.class_names != train.class_names:
            raise ValueError(
                f"validation classes {val.class_names} differ from training classes {train.class_names}"
            )
        return train, val, train_report, val_report
    if not 0 < d.val_split < 1:
        raise ValueError(
            f"data.val_split must be in (0, 1) when no --val is given, got {d.val_split}"
        )
    order = np.random.default_rng(cfg.run.seed).permutation(len(train.images))
    n_val = max(1, int(round(len(order) * d.val_split)))
    val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    return _subset(train, train_idx, "train"), _subset(train, val_idx, "val"), train_report, None


def _subset(ds: DetectionDataset, indices: np.ndarray, split: str) -> DetectionDataset:
    return DetectionDataset(
        ds.root,
        ds.class_names,
        [ds.images[i] for i in indices.tolist()],
        source=ds.source,
        format=ds.format,
        split=split,
    )


def auto_class_weights(ds: DetectionDataset) -> list[float]:
    """Inverse class frequency, normalised to mean 1 over the classes; background 1."""
    counts = np.zeros(ds.num_classes)
    for rec in ds.images:
        np.add.at(counts, rec.labels[~(rec.iscrowd | rec.ignore)], 1)
    fg = counts[1:]
    inv = np.where(fg > 0, 1.0 / np.maximum(fg, 1), 0.0)
    inv = inv / inv[fg > 0].mean() if (fg > 0).any() else np.ones_like(fg)
    return [1.0, *np.round(inv, 6).tolist()]


def build_training_model(cfg: TrainConfig, train: DetectionDataset) -> FasterRCNN:
    args = dict(cfg.model.args)
    if cfg.data.img_size:
        args.setdefault("min_size", cfg.data.img_size)
        args.setdefault("max_size", cfg.data.img_size)
    cw = cfg.model.class_weights
    if cw == "auto":
        args["class_weights"] = auto_class_weights(train)
    elif cw is not None:
        args["class_weights"] = list(cw)
    model = build_model(cfg.model.name, train.num_classes, **args)
    model.class_names = list(train.class_names)
    if cfg.model.weights:
        _load_initial_weights(model, cfg.model.weights)
    return model


def _load_initial_weights(model: FasterRCNN, path: str) -> None:
    """Fine-tuning start: every parameter whose name and shape match is loaded; the rest
    (e.g. a predictor for another number of classes) keeps its fresh initialisation."""
    try:
        read_metadata(path)
        source = load_model(path).state_dict()
    except ValueError:
        from ..io.convert import from_torchvision

        raw = load_state_dict_file(path)
        source = (
            from_torchvision(raw)
            if any(k.startswith("roi_heads.box_head.fc6") for k in raw)
            else raw
        )
    own = model.state_dict()
    loaded = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(loaded))
    model.load_state_dict(loaded, strict=False)
    log.info(
        "weights from %s: %d tensors loaded, %d kept fresh%s",
        path,
        len(loaded),
        len(skipped),
        f" ({', '.join(skipped[:4])}{' ...' if len(skipped) > 4 else ''})" if skipped else "",
    )


def set_image_size(model: FasterRCNN, size: int) -> None:
    """Progressive resizing: the longest image side becomes ``size``."""
    model.transform.min_size = (size,)
    model.transform.max_size = size


def _size_for_epoch(schedule: list[list[int]] | None, epoch: int) -> int | None:
    if not schedule:
        return None
    size = None
    for start, value in sorted(schedule):
        if epoch >= start:
            size = value
    return size


class TopK:
    """The k best checkpoints by score, as files ``weights/epoch<N>.safetensors``."""

    def __init__(self, k: int, folder: Path, entries: list | None = None) -> None:
        self.k = k
        self.folder = folder
        self.entries: list[tuple[float, int]] = [tuple(e) for e in (entries or [])]

    def offer(self, score: float, epoch: int, model: FasterRCNN) -> bool:
        if self.k <= 0:
            return False
        if len(self.entries) >= self.k and score <= min(s for s, _ in self.entries):
            return False
        save_model(model, self.folder / f"epoch{epoch}.safetensors")
        self.entries.append((score, epoch))
        self.entries.sort(key=lambda e: (-e[0], e[1]))
        for _, dropped in self.entries[self.k :]:
            (self.folder / f"epoch{dropped}.safetensors").unlink(missing_ok=True)
        self.entries = self.entries[: self.k]
        return True


class Trainer:
    """Holds the state of one run; :meth:`fit` runs it. See :func:`train`."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.info = init_distributed()
        self.device = resolve_device(cfg.run.device)
        if self.info.enabled and self.device.type == "cuda":
            torch.cuda.set_device(self.info.local_rank)
            self.device = torch.device("cuda", self.info.local_rank)
        out = _run_folder(cfg.run.out, cfg.run.resume) if self.info.is_main else Path(cfg.run.out)
        self.out = Path(broadcast(str(out), self.info))
        self.weights = self.out / "weights"
        if self.info.is_main:
            self.weights.mkdir(parents=True, exist_ok=True)
        _setup_logging(self.out if self.info.is_main else None, self.info)
        _seed_everything(cfg.run.seed + self.info.rank, cfg.run.deterministic)

    # ---- data -----------------------------------------------------------------------
    def _loaders(self, train: DetectionDataset, val: DetectionDataset):
        d, seed = self.cfg.data, self.cfg.run.seed
        self.augmenter = Augmenter(d.augment, min_visibility=d.min_visibility, seed=seed)
        if d.tile:
            train_items = TiledDataset(
                train, d.tile, d.overlap, d.tile_min_visibility, self.augmenter, d.exif
            )
            log.info(
                "tiles: %d of %d px from %d images; %s",
                len(train_items),
                d.tile,
                len(train),
                dict(train_items.report),
            )
        else:
            train_items = DetectionTorchDataset(train, self.augmenter, exif=d.exif)
        if d.repeat_threshold is not None and not d.tile:
            sampler = RepeatFactorSampler(
                train,
                d.repeat_threshold,
                seed=seed,
                rank=self.info.rank,
                world_size=self.info.world_size,
            )
        elif self.info.enabled:
            sampler = DistributedSampler(
                train_items, self.info.world_size, self.info.rank, shuffle=True, seed=seed
            )
        else:
            self._generator = torch.Generator().manual_seed(seed)
            sampler = RandomSampler(train_items, generator=self._generator)
        self.train_sampler = sampler
        self.train_loader = DataLoader(
            train_items,
            batch_size=d.batch_size,
            sampler=sampler,
            num_workers=d.workers,
            collate_fn=collate,
            drop_last=False,
        )
        val_items = DetectionTorchDataset(val, None, exif=d.exif)
        val_sampler = (
            DistributedSampler(val_items, self.info.world_size, self.info.rank, shuffle=False)
            if self.info.enabled
            else None
        )
        self.val_loader = DataLoader(
            val_items,
            batch_size=d.batch_size,
            sampler=val_sampler,
            num_workers=d.workers,
            collate_fn=collate,
        )

    def _set_epoch(self, epoch: int) -> None:
        self.augmenter.set_epoch(epoch)
        sampler = self.train_sampler
        if isinstance(sampler, (DistributedSampler, RepeatFactorSampler)):
            sampler.set_epoch(epoch)
        elif hasattr(self, "_generator"):
            self._generator.manual_seed(self.cfg.run.seed + epoch)

    # ---- evaluation -----------------------------------------------------------------
    def evaluate(self, model: FasterRCNN) -> EvalResult | None:
        predictions = all_gather_list(
            predict_batches(model, self.val_loader, self.device), self.info
        )
        if not self.info.is_main:
            return None
        unique = {p["image_id"]: p for p in predictions}  # DistributedSampler may pad with repeats
        e = self.cfg.eval
        return evaluate_detections(self.val, list(unique.values()), e.conf, tuple(e.score_weights))

    # ---- the run --------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg, info = self.cfg, self.info
        start_time = time.perf_counter()
        train, val, train_report, val_report = load_datasets(cfg)
        self.val = val
        if info.is_main:
            log.info("training data %s:", cfg.data.train)
            for line in train_report.summary_lines():
                log.info("  %s", line)
            if val_report is not None:
                log.info("validation data %s:", cfg.data.val)
                for line in val_report.summary_lines():
                    log.info("  %s", line)
            log.info(
                "%d training and %d validation images, %d classes: %s",
                len(train),
                len(val),
                len(train.class_names),
                ", ".join(train.class_names),
            )
            cfg.save(self.out / "config.yaml")
        self._loaders(train, val)
        model = build_training_model(cfg, train).to(self.device)
        raw_model = model
        if info.enabled:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        o, s = cfg.optim, cfg.schedule
        optimizer = build_optimizer(raw_model, o.name, o.lr, o.momentum, o.nesterov, o.weight_decay)
        steps_per_epoch = max(1, math.ceil(len(self.train_loader) / o.accumulate))
        schedule = LRSchedule(
            total_steps=s.epochs * steps_per_epoch,
            epochs=s.epochs,
            policy=s.policy,
            warmup_steps=int(s.warmup_epochs * steps_per_epoch),
            warmup_factor=s.warmup_factor,
            step_size=s.step_size,
            gamma=s.gamma,
            milestones=list(s.milestones),
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        scaler = torch.amp.GradScaler("cuda") if cfg.run.amp == "fp16" else None
        options = StepOptions(
            cfg.run.amp,
            o.grad_clip,
            o.accumulate,
            o.l1_lambda,
            cfg.run.nan_policy,
            cfg.run.max_nan_skips,
        )

        topk = TopK(cfg.eval.top_k, self.weights)
        first_epoch, best_score, best_epoch, stale = 0, -math.inf, None, 0
        epochs_total = s.epochs
        elapsed_before = 0.0
        state_path = self.weights / "last.state.pt"
        if cfg.run.resume:
            if not state_path.exists():
                raise FileNotFoundError(
                    f"--resume: no {state_path}; start the run without --resume"
                )
            state = load_training_state(state_path)
            raw_model.load_state_dict(load_model(self.weights / "last.safetensors").state_dict())
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            schedule.fit_total(int(state["schedule_total"]))
            first_epoch, best_score, stale = (
                int(state["epoch"]) + 1,
                float(state["best_score"]),
                int(state["stale"]),
            )
            best_epoch = state["best_epoch"]
            epochs_total = int(state["epochs_total"])
            elapsed_before = float(state["elapsed"])
            topk = TopK(cfg.eval.top_k, self.weights, state["topk"])
            _set_rng_state(state["rng"])
            log.info("resumed from %s at epoch %d", state_path, first_epoch)

        budget = s.time_budget * 60 if s.time_budget else None

        def elapsed() -> float:
            return elapsed_before + time.perf_counter() - start_time

        def out_of_time() -> bool:
            done = budget is not None and (
                elapsed() > budget or scheduler.last_epoch >= schedule.total_steps
            )
            return bool(broadcast(done, info))

        results_csv = self.out / "results.csv"
        writer = _TensorBoard(self.out) if info.is_main else None
        last_result: EvalResult | None = None
        epoch = first_epoch - 1
        while epoch + 1 < epochs_total:  # epochs_total may shrink to fit a time budget
            epoch += 1
            size = _size_for_epoch(cfg.data.img_sizes, epoch)
            if size is not None:
                set_image_size(raw_model, size)
            self._set_epoch(epoch)
            epoch_start = time.perf_counter()
            stats = train_one_epoch(
                model,
                self._progress(self.train_loader, epoch, epochs_total),
                optimizer,
                scheduler,
                scaler,
                options,
                self.device,
                epoch,
                should_stop=out_of_time,
            )
            result = None
            evaluate_now = (
                (epoch + 1) % cfg.eval.every == 0 or epoch + 1 == epochs_total or out_of_time()
            )
            if evaluate_now:
                result = self.evaluate(raw_model)
            seconds = time.perf_counter() - epoch_start
            if budget is not None and epoch == first_epoch:
                # Fit the schedule to the budget from the first epoch's duration; the last
                # epoch may be partial, ending where the schedule ends.
                fit = (epoch + 1) + max(0.0, budget - elapsed()) / max(seconds, 1e-6)
                fit = float(broadcast(min(float(s.epochs), fit), info))
                epochs_total = math.ceil(fit)
                schedule.fit_total(int(fit * steps_per_epoch))
                log.info(
                    "time budget %.1f min: %.2f epochs of %.1f s fit", s.time_budget, fit, seconds
                )
            stop_early = False
            if info.is_main:
                lr = optimizer.param_groups[0]["lr"]
                row = self._row(epoch, stats, lr, result, seconds)
                _append_csv(results_csv, row)
                if writer:
                    writer.log(row, epoch)
                self._log_epoch(epoch, epochs_total, stats, result, seconds)
                save_model(raw_model, self.weights / "last.safetensors")
                if result is not None:
                    last_result = result
                    topk.offer(result.score, epoch, raw_model)
                    if result.score > best_score:
                        best_score, best_epoch, stale = result.score, epoch, 0
                        save_model(raw_model, self.weights / "best.safetensors")
                    else:
                        stale += 1
                    stop_early = cfg.eval.patience is not None and stale >= cfg.eval.patience
                atomic_torch_save(
                    {
                        "epoch": epoch,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict() if scaler is not None else None,
                        "rng": _rng_state(),
                        "topk": [list(e) for e in topk.entries],
                        "best_score": best_score,
                        "best_epoch": best_epoch,
                        "stale": stale,
                        "epochs_total": epochs_total,
                        "schedule_total": schedule.total_steps,
                        "elapsed": elapsed(),
                    },
                    state_path,
                )
            if broadcast(stop_early, info):
                log.info(
                    "early stopping: no improvement for %d epochs (best epoch %s)",
                    cfg.eval.patience,
                    best_epoch,
                )
                break
            if out_of_time():
                log.info("time budget of %.1f min reached after epoch %d", s.time_budget, epoch)
                break
            stop_after = cfg.run.stop_after_epochs
            if (
                stop_after is not None
                and epoch + 1 - first_epoch >= stop_after
                and epoch + 1 < epochs_total
            ):
                log.info(
                    "stopping after %d epochs of this run; continue with --resume --out %s",
                    stop_after,
                    self.out,
                )
                break

        final: dict = {}
        final_result = last_result
        best_epoch = broadcast(best_epoch, info)  # tracked on rank 0
        if best_epoch is not None and best_epoch != epoch:
            # Every rank takes part: evaluation gathers predictions across ranks.
            final_result = self.evaluate(load_model(self.weights / "best.safetensors", self.device))
        if info.is_main:
            if final_result is not None:
                final = final_result.to_json()
                final_result.write(self.out)
                self._plots(train, final_result, raw_model, results_csv)
            if writer:
                writer.close()
            log.info("done in %.1f min; results in %s", elapsed() / 60, self.out)
        cleanup(info)
        best = self.weights / "best.safetensors"
        return TrainResult(
            self.out,
            best if best.exists() else None,
            self.weights / "last.safetensors",
            epoch + 1,
            best_epoch,
            final,
            train_report,
        )

    # ---- reporting ------------------------------------------------------------------
    def _progress(self, loader, epoch: int, total: int):
        if not (self.cfg.run.progress and self.info.is_main and sys.stderr.isatty()):
            return loader
        from tqdm import tqdm

        return tqdm(loader, desc=f"epoch {epoch + 1}/{total}", leave=False, dynamic_ncols=True)

    @staticmethod
    def _row(epoch: int, stats, lr: float, result: EvalResult | None, seconds: float) -> dict:
        row = {"epoch": epoch, **{k: round(v, 6) for k, v in stats.losses.items()}, "lr": lr}
        if result is not None:
            row.update(
                mAP=result.coco["AP"],
                mAP50=result.coco["AP50"],
                mAP75=result.coco["AP75"],
                precision=result.precision_at_conf,
                recall=result.recall_at_conf,
                F1=result.f1_at_conf,
                score=result.score,
            )
        row["seconds"] = round(seconds, 2)
        return row

    def _log_epoch(
        self, epoch: int, total: int, stats, result: EvalResult | None, seconds: float
    ) -> None:
        losses = " ".join(f"{k.removeprefix('loss_')} {v:.4f}" for k, v in stats.losses.items())
        text = f"epoch {epoch + 1}/{total}: {losses} ({stats.images} images, {seconds:.1f} s)"
        if stats.aug_dropped:
            text += f"; augmentation dropped {stats.aug_dropped} boxes"
        if stats.nan_skipped:
            text += f"; {stats.nan_skipped} non-finite steps skipped"
        if result is not None:
            text += f" | mAP {result.coco['AP']:.3f} mAP50 {result.coco['AP50']:.3f} F1 {result.f1_at_conf:.3f} score {result.score:.3f}"
        log.info(text)

    def _plots(
        self, train: DetectionDataset, result: EvalResult, model: FasterRCNN, results_csv: Path
    ) -> None:
        from ..data.images import to_pil
        from ..data.loader import read_record_image
        from ..evaluation import plots

        plots.plot_results(results_csv, self.out / "results.png")
        plots.plot_pr_curve(result, self.out / "PR_curve.png")
        plots.plot_f1_curve(result, self.out / "F1_curve.png")
        plots.plot_confusion(result, self.out / "confusion_matrix.png")
        plots.plot_labels(train, self.out / "labels.png")
        sample = self.val.images[:8]
        best = self.weights / "best.safetensors"
        shown = load_model(best, self.device) if best.exists() else model
        subset = DetectionDataset(self.val.root, self.val.class_names, sample)
        loader = DataLoader(
            DetectionTorchDataset(subset, exif=self.cfg.data.exif), batch_size=4, collate_fn=collate
        )
        preds = predict_batches(shown, loader, self.device)
        keep = [
            {
                k: v[p["scores"] >= self.cfg.eval.conf] if k != "image_id" else v
                for k, v in p.items()
            }
            for p in preds
        ]
        images = [to_pil(read_record_image(rec, self.cfg.data.exif)) for rec in sample]
        plots.prediction_grid(
            images,
            [(r.boxes, r.labels) for r in sample],
            keep,
            self.val.class_names,
            self.out / "val_predictions.jpg",
        )


class _TensorBoard:
    """Scalars to TensorBoard when it is installed; nothing otherwise."""

    def __init__(self, out: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            self.writer = None
            return
        self.writer = SummaryWriter(str(out))

    def log(self, row: dict, epoch: int) -> None:
        if self.writer is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, epoch)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def __bool__(self) -> bool:
        return self.writer is not None


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    columns = [
        "epoch",
        *sorted(k for k in row if k.startswith("loss_")),
        *[c for c in RESULT_COLUMNS if c != "epoch"],
    ]
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def train(cfg: TrainConfig) -> TrainResult:
    """Train a detector as configured; the Python twin of ``frcnn train``."""
    return Trainer(cfg).fit()
