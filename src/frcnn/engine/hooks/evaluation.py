"""When to evaluate: every ``every`` epochs and always on the last one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import InputError
from .base import Hook

if TYPE_CHECKING:
    from ..trainer import Trainer


class EvalSchedule(Hook):
    """Evaluates the model on the validation data after every ``every``-th epoch and after
    the last epoch (also one that a time budget made the last); ``trainer.result`` holds the
    :class:`~frcnn.evaluation.report.EvalResult` on the main process, None otherwise."""

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise InputError(f"eval.every must be >= 1, got {every}")
        self.every = every

    def after_epoch(self, trainer: Trainer) -> None:
        last = trainer.epoch + 1 >= trainer.epochs_total
        if (trainer.epoch + 1) % self.every == 0 or last:
            trainer.result = trainer.evaluate(trainer.raw_model)
