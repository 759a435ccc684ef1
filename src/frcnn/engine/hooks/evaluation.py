"""When to evaluate: every ``every`` epochs and always on the last one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import InputError
from ..state import EVALUATED
from .base import Hook

if TYPE_CHECKING:
    from ..state import TrainState


class EvalSchedule(Hook):
    """Evaluates the model on the validation data after every ``every``-th epoch and after
    the last epoch (also one that a time budget made the last); ``state.result`` holds the
    :class:`~frcnn.evaluation.report.EvalResult` on the main process, None otherwise."""

    priority = 40
    runs_after = ("TimeBudget",)

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise InputError(f"eval.every must be >= 1, got {every}")
        self.every = every

    def after_epoch(self, state: TrainState) -> None:
        last = state.epoch + 1 >= state.epochs_total
        if (state.epoch + 1) % self.every == 0 or last:
            trainer = state.trainer
            with trainer.averaged() as model:  # the moving average with optim.ema
                result = trainer.evaluate(model)
            state.emit(EVALUATED, result=result)
