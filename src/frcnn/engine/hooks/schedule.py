"""Progressive resizing: the training image size changes at given epochs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Hook

if TYPE_CHECKING:
    from ..state import TrainState


def size_for_epoch(schedule: list[list[int]] | None, epoch: int) -> int | None:
    """The size of the last ``[first_epoch, size]`` entry that has started, or None."""
    size = None
    for start, value in sorted(schedule or []):
        if epoch >= start:
            size = value
    return size


class ProgressiveResize(Hook):
    """Before each epoch, the longest image side becomes the scheduled size: in the model's
    transform and in its configuration, so that its model files are rebuilt at the size
    they were trained and selected at.

    Args:
        schedule: ``[[first_epoch, size], ...]`` with epochs counted from 0.
    """

    priority = 10

    def __init__(self, schedule: list[list[int]]) -> None:
        self.schedule = schedule

    def before_epoch(self, state: TrainState) -> None:
        size = size_for_epoch(self.schedule, state.epoch)
        if size is not None:
            model = state.trainer.raw_model
            model.transform.min_size, model.transform.max_size = (size,), size
            model.config.update(min_size=size, max_size=size)
