"""Where each epoch's numbers go: ``results.csv``, TensorBoard, the log line, and a steady
progress line when no terminal shows a progress bar."""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ...io.atomic import atomic_write_csv, csv_row
from ...words import count
from .base import Hook

if TYPE_CHECKING:
    from ..state import TrainState

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


def epoch_row(state: TrainState) -> dict:
    """The epoch's ``results.csv`` row: mean losses, learning rate, metrics when evaluated."""
    stats, result = state.stats, state.result
    row = {"epoch": state.epoch + 1, **{k: round(v, 6) for k, v in stats.losses.items()}}
    row["lr"] = state.lr
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
        row.update({f"val_{k}": round(v, 6) for k, v in state.val_losses.items()})
    row["seconds"] = round(state.clock() - state.epoch_start, 2)
    return row


def numbers(row: dict) -> dict[str, float]:
    """The numeric entries of a row (None and text left out)."""
    return {
        k: float(v)
        for k, v in row.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def epoch_scalars(state: TrainState) -> dict[str, float]:
    """Every number of the epoch's row but the epoch itself: what TensorBoard and the
    trackers log at step = epoch (counted from 1)."""
    return numbers({k: v for k, v in epoch_row(state).items() if k != "epoch"})


class ResultsCSV(Hook):
    """One row per epoch in ``results.csv``, epochs counted from 1; a resume first drops
    rows of epochs that will be trained again, so no epoch has two rows."""

    priority = 61
    runs_after = ("EvalSchedule", "Checkpointer")  # no row for weights not saved

    def __init__(self, path: Path) -> None:
        self.path = path

    def before_train(self, state: TrainState) -> None:
        if not (state.info.is_main and self.path.exists()):
            return
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames or [], list(reader)
        shift = 1 if rows and int(rows[0]["epoch"]) == 0 else 0  # earlier runs counted from 0
        for r in rows:
            r["epoch"] = str(int(r["epoch"]) + shift)
        kept = [r for r in rows if int(r["epoch"]) <= state.first_epoch]
        if len(kept) != len(rows) or shift:
            atomic_write_csv(self.path, fields, kept)

    def after_epoch(self, state: TrainState) -> None:
        if not state.info.is_main:
            return
        row = epoch_row(state)
        new = not self.path.exists()
        losses = sorted(k for k in row if k.startswith("loss_"))
        val = [f"val_{k}" for k in losses] if state.cfg.eval.val_loss else []
        columns = ["epoch", *losses, *val, *[c for c in RESULT_COLUMNS if c != "epoch"]]
        if not new:  # the file's own columns (a run resumed from an earlier version)
            with self.path.open(newline="") as f:
                columns = next(csv.reader(f), None) or columns
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(csv_row(row))


class TensorBoard(Hook):
    """Every number of the epoch's row as a TensorBoard scalar, when tensorboard is
    installed (nothing otherwise)."""

    priority = 51
    runs_after = ("EvalSchedule",)

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writer = None

    def before_train(self, state: TrainState) -> None:
        if not state.info.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self.writer = SummaryWriter(str(self.folder))

    def after_epoch(self, state: TrainState) -> None:
        if self.writer is None:
            return
        for k, v in epoch_scalars(state).items():
            self.writer.add_scalar(k, v, state.epoch + 1)

    def after_train(self, state: TrainState) -> None:
        if self.writer is not None:
            self.writer.close()


class EpochLog(Hook):
    """One log line per epoch: losses, images, seconds, counted fixes, metrics."""

    priority = 52
    runs_after = ("EvalSchedule",)

    def after_epoch(self, state: TrainState) -> None:
        stats, result = state.stats, state.result
        losses = " ".join(f"{k.removeprefix('loss_')} {v:.4f}" for k, v in stats.losses.items())
        seconds = state.clock() - state.epoch_start
        text = f"{epoch_label(state)}: {losses} ({count(stats.images, 'image')}, {seconds:.1f} s)"
        if stats.aug_dropped:
            text += f"; augmentation dropped {stats.aug_dropped} boxes"
        if stats.nan_skipped:
            text += f"; {stats.nan_skipped} non-finite steps skipped"
        if getattr(stats, "invalid_dropped", 0):
            text += f"; {stats.invalid_dropped} invalid boxes of streamed rows dropped"
        if getattr(stats, "unreadable", 0):
            text += f"; {stats.unreadable} unreadable images skipped"
        if result is not None:
            text += f" | mAP {result.coco['AP']:.3f} mAP50 {result.coco['AP50']:.3f} F1 {result.f1_at_conf:.3f} score {result.score:.3f}"
        log.info(text)


class ProgressLog(Hook):
    """Without a progress bar (a log file, CI, ``nohup``), a line every ``interval`` seconds:
    epoch, step, images per second, losses and the time left."""

    priority = 53

    def __init__(self, interval: float = 30.0) -> None:
        self.interval = interval
        self._start = self._last = 0.0
        self._images = 0

    def before_epoch(self, state: TrainState) -> None:
        self._start = self._last = state.clock()
        self._images = 0

    def after_step(self, state: TrainState) -> None:
        self._images += state.step_images
        now = state.clock()
        if now - self._last < self.interval:
            return
        self._last = now
        rate = self._images / max(now - self._start, 1e-9)
        batches = state.batch_in_epoch + 1
        left = (state.schedule.total_steps - state.global_step) * state.accumulate
        eta = left * (now - self._start) / batches
        losses = " ".join(
            f"{k.removeprefix('loss_')} {v:.4f}" for k, v in state.step_losses.items()
        )
        log.info(
            "%s step %d/%d: %.1f images/s, %s, %s left",
            epoch_label(state),
            batches,
            state.batches_per_epoch,
            rate,
            losses,
            _duration(eta),
        )


def epoch_label(state: TrainState) -> str:
    """``epoch 3/12``; under a time budget, whose refits move the total, ``epoch 3 of about
    12`` until the last epoch is known."""
    n, total = state.epoch + 1, state.epochs_total
    if state.cfg.schedule.time_budget and n < total:
        return f"epoch {n} of about {total}"
    return f"epoch {n}/{total}"


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m" if hours else f"{m}m{s:02d}s"
