"""The trainer's state as data: what every hook reads, and how hooks speak back.

The trainer writes the progress fields (epoch, step, losses, ...). A hook never writes a
field that another part reads back: it announces what it did as an :class:`Event`
(``evaluated`` with the epoch's result, ``weights_saved`` with the file, ``new_best``,
``final_metrics``), and steers the run through three requests (:meth:`TrainState
.request_stop`, :meth:`~TrainState.end_epoch`, :meth:`~TrainState.fit_epochs`). What the run
knows from events is a property (``result``, ``best_epoch``, ``metrics``), so it cannot
drift from what was announced. A hook that acts on the model reaches the trainer through
``state.trainer`` (``evaluate``, ``raw_model``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..config import TrainConfig
from .distributed import DistInfo
from .loop import EpochStats

if TYPE_CHECKING:
    from ..data.records import DetectionDataset
    from ..evaluation.report import EvalResult
    from .optim import LRSchedule
    from .trainer import Trainer

# What hooks announce.
EVALUATED = "evaluated"  # data: result (an EvalResult, on the main process)
WEIGHTS_SAVED = "weights_saved"  # data: path (the epoch's last.safetensors)
NEW_BEST = "new_best"  # data: score (best.safetensors now holds this epoch)
FINAL_METRICS = "final_metrics"  # data: metrics (metrics.json of the final evaluation)
# Events whose data only the latest of their name keeps.
HEAVY = frozenset({EVALUATED})


@dataclass(frozen=True)
class Event:
    """Something a hook did in epoch ``epoch`` (counted from 0), with its data."""

    name: str
    epoch: int
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainState:
    """Everything hooks read about a run (see the module doc). Epochs count from 0 here
    (``results.csv`` and file names count from 1).

    Set up once: ``cfg``, ``info`` (rank), ``device``, ``out`` and ``weights`` (folders),
    ``train_data``/``val_data``, ``data_lines`` (the data checks' summary), the loader
    sizes (``steps_per_epoch``, ``batches_per_epoch``, ``batch_size``, ``accumulate``,
    ``num_val_images``), ``eval_every`` and ``schedule`` (whose ``fit_total`` reshapes the
    run). Progress, written by the trainer: ``epoch``, ``first_epoch``, ``epochs_total``,
    ``global_step`` (optimiser steps), ``batch_in_epoch``, ``step_losses``, ``step_images``,
    ``lr``, ``stats`` (the epoch's :class:`~frcnn.engine.loop.EpochStats`), ``val_losses``.
    """

    cfg: TrainConfig = field(default_factory=TrainConfig)
    info: DistInfo = field(default_factory=DistInfo)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    out: Path = Path("runs/train")
    weights: Path = Path("runs/train/weights")
    train_data: DetectionDataset | None = None
    val_data: DetectionDataset | None = None
    data_lines: list[str] = field(default_factory=list)
    steps_per_epoch: int = 1
    batches_per_epoch: int = 1
    batch_size: int = 4
    accumulate: int = 1
    num_val_images: int = 0
    eval_every: int = 1
    schedule: LRSchedule | None = None
    epoch: int = -1
    first_epoch: int = 0
    epochs_total: int = 1
    global_step: int = 0
    batch_in_epoch: int = 0
    step_losses: dict[str, float] = field(default_factory=dict)
    step_images: int = 0
    lr: float = 0.0
    stats: EpochStats = field(default_factory=EpochStats)
    val_losses: dict[str, float] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    eval_estimate: float | None = None  # seconds of one evaluation, measured before training
    clock: Callable[[], float] = time.perf_counter
    start: float = 0.0
    elapsed_before: float = 0.0
    epoch_start: float = 0.0
    stop_reason: str | None = None
    epoch_ending: bool = False
    trainer: Trainer | None = field(default=None, repr=False)

    # ---- time ---------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds of this run, earlier invocations of a resumed run included."""
        return self.elapsed_before + self.clock() - self.start

    def eval_seconds_per_run(self) -> float | None:
        """Mean seconds of an evaluation so far (before the first: the estimate measured
        before training, or None)."""
        if not self.eval_seconds:
            return self.eval_estimate
        return sum(self.eval_seconds) / len(self.eval_seconds)

    # ---- what hooks ask of the run -------------------------------------------------------
    def request_stop(self, reason: str) -> None:
        """End the run after this epoch (its state and checkpoints are saved first)."""
        self.stop_reason = self.stop_reason or reason

    def end_epoch(self) -> None:
        """End the current epoch after this step."""
        self.epoch_ending = True

    def fit_epochs(self, epochs: int) -> None:
        """The run ends after ``epochs`` epochs (never before the current one)."""
        self.epochs_total = max(self.epoch + 1, int(epochs))

    # ---- events -------------------------------------------------------------------------
    def emit(self, name: str, **data: Any) -> Event:
        """Announce what a hook did in the current epoch. An ``evaluated`` event keeps its
        result until the next one (a result holds every validation prediction)."""
        if name in HEAVY:
            self.events = [Event(e.name, e.epoch) if e.name == name else e for e in self.events]
        event = Event(name, self.epoch, data)
        self.events.append(event)
        return event

    def last(self, name: str, epoch: int | None = None) -> Event | None:
        """The latest event called ``name`` (of ``epoch`` when given), or None."""
        for event in reversed(self.events):
            if event.name == name and (epoch is None or event.epoch == epoch):
                return event
        return None

    @property
    def result(self) -> EvalResult | None:
        """This epoch's evaluation (None when it was not evaluated, or off the main
        process)."""
        event = self.last(EVALUATED, self.epoch)
        return event.data.get("result") if event is not None else None

    @property
    def latest_result(self) -> EvalResult | None:
        """The most recent evaluation's result, of whichever epoch (None before any)."""
        event = self.last(EVALUATED)
        return event.data.get("result") if event is not None else None

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose weights are ``best.safetensors`` (None before any)."""
        event = self.last(NEW_BEST)
        return event.epoch if event is not None else None

    @property
    def metrics(self) -> dict:
        """The final evaluation's numbers (empty until the run's report)."""
        event = self.last(FINAL_METRICS)
        return dict(event.data["metrics"]) if event is not None else {}
