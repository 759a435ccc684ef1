"""Stopping rules that count time or epochs: the time budget and stop-after-epochs."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from ...words import count
from ..distributed import broadcast_values
from ..optim import warmup_warning
from .base import Hook

if TYPE_CHECKING:
    from ..state import TrainState

log = logging.getLogger("frcnn")

# Forward-only evaluation of an image costs about this share of a training step's time per
# image (forward + backward + update), used until an evaluation has been timed.
EVAL_COST_SHARE = 1 / 3


class TimeBudget(Hook):
    """Ends the run inside ``minutes`` of wall time with a complete, decayed schedule.

    From the first batch on, and again after every batch and epoch, the learning-rate
    schedule is refitted to the optimiser steps that fit in the time left: measured seconds
    per step, plus the measured (or, before the first evaluation, estimated) evaluation time
    spread over the epochs, with two evaluations held back for the last epoch and the final
    report. A slow or busy machine therefore gets fewer steps, not a cut-off schedule. The
    run ends when the fitted schedule is done or the time is up, whichever comes first; the
    epoch it ends in is evaluated as the last one.

    Args:
        minutes: the budget, counted from the start of training (data loading included).
        max_epochs: the configured epochs; the schedule never grows beyond them.
    """

    priority = 20

    def __init__(self, minutes: float, max_epochs: int) -> None:
        self.budget = minutes * 60
        self.max_epochs = max_epochs
        self.batches = 0
        self.train_seconds = 0.0
        self._last = 0.0
        self._ended = False

    def before_epoch(self, state: TrainState) -> None:
        self._last = state.clock()

    def after_step(self, state: TrainState) -> None:
        now = state.clock()
        self.train_seconds += now - self._last
        self._last = now
        self.batches += 1
        total = self._fit(state)
        done = float(self._out_of_time(state, total))
        if state.info.enabled:  # every rank must take the same number of steps
            total, done = broadcast_values([total, done], state.info, state.device)
        self._apply(state, total)
        if self.batches == 2 and state.info.is_main:  # the first fitted length
            note = warmup_warning(state.schedule, state.steps_per_epoch)
            if note:
                log.warning("warning: time budget: %s", note)
        if done:
            self._end(state, during_epoch=True)

    def after_epoch(self, state: TrainState) -> None:
        self._apply(state, self._fit(state))
        if self._out_of_time(state, state.schedule.total_steps):
            self._end(state, during_epoch=False)

    @staticmethod
    def _apply(state: TrainState, total: float) -> None:
        """The schedule ends after ``total`` steps; the run after the epoch holding them."""
        state.schedule.fit_total(int(total))
        epochs = math.ceil(int(total) / state.steps_per_epoch)
        state.fit_epochs(epochs)

    def _out_of_time(self, state: TrainState, total: float) -> bool:
        """The budget is spent, or the ``total`` steps the schedule is fitted to are done."""
        return state.elapsed() >= self.budget or state.global_step >= int(total)

    def _end(self, state: TrainState, during_epoch: bool) -> None:
        if not self._ended:
            self._ended = True
            log.info(
                "time budget of %.1f min: training ends in epoch %d after %s",
                self.budget / 60,
                state.epoch + 1,
                count(state.global_step, "step"),
            )
        state.fit_epochs(state.epoch + 1)
        if during_epoch:
            state.end_epoch()

    def _fit(self, state: TrainState) -> float:
        """Optimiser steps that fit in the budget (the schedule's current total until a
        batch has been timed; the first, with its first-call costs, errs on the slow side
        and is corrected as more are timed)."""
        planned = self.max_epochs * state.steps_per_epoch
        if self.batches < 1:
            return float(min(state.schedule.total_steps, planned))
        step_seconds = self.train_seconds / self.batches * state.accumulate
        eval_seconds = state.eval_seconds_per_run()
        if eval_seconds is None:
            per_image = step_seconds / (state.batch_size * state.accumulate)
            eval_seconds = state.num_val_images * per_image * EVAL_COST_SHARE
        per_step = step_seconds + eval_seconds / (state.eval_every * state.steps_per_epoch)
        left = self.budget - state.elapsed() - 2 * eval_seconds
        fit = state.global_step + max(0.0, left) / per_step
        return float(max(state.global_step, min(planned, fit)))

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches, "train_seconds": self.train_seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batches = int(state["batches"])
        self.train_seconds = float(state["train_seconds"])


class StopAfterEpochs(Hook):
    """Ends this invocation after ``epochs`` epochs (the schedule still spans the configured
    epochs); continue with ``--resume``. For time-limited jobs."""

    priority = 71

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def after_epoch(self, state: TrainState) -> None:
        done = state.epoch + 1 - state.first_epoch
        if done >= self.epochs and state.epoch + 1 < state.epochs_total:
            state.request_stop(
                f"stopping after {self.epochs} epochs of this run; continue with "
                f"--resume --out {state.out}"
            )
