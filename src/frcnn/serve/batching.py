"""Requests batched for the detector: one worker thread takes up to ``max_batch`` waiting
images, waiting at most ``max_wait`` seconds after the first for more, and runs them in one
call. Each request gets its own result (or the call's error) through a future."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

_STOP = object()


@dataclass
class BatchStats:
    """What the worker has run: requests, calls, and the largest call."""

    requests: int = 0
    batches: int = 0
    largest: int = 0
    failed: int = 0

    def to_json(self) -> dict:
        return {
            "requests": self.requests,
            "batches": self.batches,
            "largest_batch": self.largest,
            "failed": self.failed,
        }


@dataclass
class _Job:
    item: Any
    future: Future = field(default_factory=Future)


class Batcher:
    """``submit(item)`` -> a future of ``run([items])[i]``, items batched as above.

    ``run`` takes a list of items and returns one result per item in order. A call that
    raises is retried one item at a time, so an error reaches only the request that causes
    it; the worker goes on."""

    def __init__(
        self, run: Callable[[Sequence[Any]], list[Any]], max_batch: int = 8, max_wait: float = 0.01
    ) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"max_batch >= 1 and max_wait >= 0, got {max_batch}, {max_wait}")
        self.run, self.max_batch, self.max_wait = run, int(max_batch), float(max_wait)
        self.stats = BatchStats()
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="frcnn-batcher", daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> Future:
        job = _Job(item)
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        """Run what is queued, then stop the worker."""
        self._queue.put(_STOP)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            jobs, stop = self._take()
            if jobs:
                self._run(jobs)
            if stop:
                return

    def _take(self) -> tuple[list[_Job], bool]:
        """The next batch, and whether the worker was told to stop after it."""
        first = self._queue.get()
        if first is _STOP:
            return [], True
        jobs = [first]
        deadline = time.monotonic() + self.max_wait
        while len(jobs) < self.max_batch:
            left = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True
            jobs.append(job)
        return jobs, False

    def _run(self, jobs: list[_Job]) -> None:
        self.stats.requests += len(jobs)
        self._call(jobs)

    def _call(self, jobs: list[_Job]) -> None:
        """One call of ``run``; when a call of several fails, each is run again alone, so
        that only the request that fails gets the error."""
        self.stats.batches += 1
        self.stats.largest = max(self.stats.largest, len(jobs))
        try:
            results = self.run([job.item for job in jobs])
        except Exception as err:
            if len(jobs) > 1:
                for job in jobs:
                    self._call([job])
                return
            self.stats.failed += 1
            jobs[0].future.set_exception(err)
            return
        for job, result in zip(jobs, results, strict=True):
            job.future.set_result(result)
