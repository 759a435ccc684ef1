"""Early stopping: the run ends when the validation score stops improving."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .base import Hook

if TYPE_CHECKING:
    from ..state import TrainState


class EarlyStopping(Hook):
    """Stops after ``patience`` evaluations in a row without a better score (epochs without
    an evaluation do not count)."""

    priority = 70
    runs_after = ("EvalSchedule",)

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = -math.inf
        self.best_epoch: int | None = None
        self.stale = 0

    def after_epoch(self, state: TrainState) -> None:
        if state.result is None or not getattr(state.result, "measurable", True):
            return
        if state.result.score > self.best:
            self.best, self.best_epoch, self.stale = state.result.score, state.epoch, 0
            return
        self.stale += 1
        if self.stale >= self.patience:
            best = "none" if self.best_epoch is None else self.best_epoch + 1
            state.request_stop(
                f"early stopping: no improvement for {self.patience} evaluations "
                f"(best epoch {best}, score {self.best:.4f})"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "stale": self.stale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.stale = float(state["best"]), int(state["stale"])
        self.best_epoch = state["best_epoch"]
