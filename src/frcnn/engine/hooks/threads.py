"""CPU threads that fit the machine as it is: when another process keeps a core busy,
torch's threads (one per core) wait on each other at every parallel region, and a training
step on two threads measured 1.9 s where one thread took 1.0 s (0.65 s on an idle machine).
So each epoch times a few training steps with every thread, then a few with one, and
trains on with the faster."""

from __future__ import annotations

import logging
import statistics
from typing import TYPE_CHECKING

import torch

from .base import Hook

if TYPE_CHECKING:
    from ..state import TrainState

log = logging.getLogger("frcnn")

# Steps of each epoch: the first is not timed (loader start-up), then TIMED with every
# thread, then TIMED with one; epochs shorter than MIN_STEPS are not measured.
TIMED = 3
MIN_STEPS = 2 * TIMED + 4
ONE_THREAD_MARGIN = 0.9  # one thread must be this much faster to be chosen


class CpuThreads(Hook):
    """``run.threads`` 0 (auto) on a CPU: every epoch, every thread or one, whichever trains
    faster on the epoch's first steps (said in the log when it changes); N > 0: always N
    threads. The process's thread count is restored after training."""

    priority = 30

    def __init__(self, threads: int = 0) -> None:
        self.fixed = threads
        self.initial = torch.get_num_threads()
        self.current = self.initial
        self.times: dict[int, list[float]] = {}
        self.last = 0.0

    def before_train(self, state: TrainState) -> None:
        if self.fixed > 0:
            torch.set_num_threads(self.fixed)

    def _measuring(self, state: TrainState) -> bool:
        return (
            self.fixed == 0
            and self.initial > 1
            and state.device.type == "cpu"
            and state.batches_per_epoch >= MIN_STEPS
        )

    def before_epoch(self, state: TrainState) -> None:
        if self._measuring(state):
            torch.set_num_threads(self.initial)
            self.times = {self.initial: [], 1: []}
        self.last = state.clock()

    def after_step(self, state: TrainState) -> None:
        now = state.clock()
        seconds, self.last = now - self.last, now
        if not self.times:
            return
        step = state.batch_in_epoch
        if 1 <= step <= TIMED:
            self.times[self.initial].append(seconds)
            if step == TIMED:
                torch.set_num_threads(1)
        elif TIMED < step <= 2 * TIMED:
            self.times[1].append(seconds)
            if step == 2 * TIMED:
                self._choose()

    def _choose(self) -> None:
        many, one = (statistics.median(self.times[n]) for n in (self.initial, 1))
        self.times = {}
        choice = 1 if one < ONE_THREAD_MARGIN * many else self.initial
        torch.set_num_threads(choice)
        if choice != self.current:
            log.info(
                "CPU threads: %d (a training step took %.2f s on %d threads, %.2f s on one%s)",
                choice,
                many,
                self.initial,
                one,
                ": another process is using the cores" if choice == 1 else "",
            )
        self.current = choice

    def after_train(self, state: TrainState) -> None:
        torch.set_num_threads(self.initial)
