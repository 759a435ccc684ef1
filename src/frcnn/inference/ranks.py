"""Inference shared by the processes of a ``torchrun`` job.

Under ``torchrun`` (or inside a process group a training joined), ``frcnn eval``,
``calibrate``, ``ensemble`` and ``predict`` are collective: every rank calls them with the
same arguments. Without tiling the ranks take every ``world_size``-th batch of images
(no image twice, none padded in); with tiling every rank reads every image and takes every
``world_size``-th batch of its tiles. Each rank's detections are gathered in the list's order, so
every rank ends with what one process computes; rank 0 alone scores and writes.

Objects travel over a gloo group (CPU), whichever backend the job trains with: the
detections are small, and gloo needs no CUDA device set for pickled objects.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from ..engine.distributed import DistInfo, join_group

log = logging.getLogger("frcnn")

T = TypeVar("T")
_GROUP: dict[str, Any] = {}  # the gloo group of an NCCL job, made once


def inference_ranks() -> DistInfo:
    """The ranks that share this inference: those of the process group this process is in;
    else torchrun's, joining them now (gloo; each rank on GPU ``LOCAL_RANK`` when there are
    GPUs); else this process alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    joined = dist.is_available() and dist.is_initialized()
    if not joined and world <= 1:
        return DistInfo()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not joined:  # kept for the life of the process (left at its exit)
        join_group("gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(local % torch.cuda.device_count())
    return DistInfo(dist.get_rank(), dist.get_world_size(), local)


def _group() -> Any:
    if dist.get_backend() == "gloo":
        return None  # the default group
    if "gloo" not in _GROUP:
        _GROUP["gloo"] = dist.new_group(backend="gloo")
    return _GROUP["gloo"]


def share(items: Sequence[T], ranks: DistInfo | None, batch: int = 1) -> list[tuple[int, T]]:
    """This rank's part of ``items`` with each one's position: every ``world_size``-th
    run of ``batch`` items, from the rank's own index (all of them in one process). Whole
    batches, so that each item is computed in the batch one process puts it in: the same
    numbers to the last bit, not just to float rounding."""
    if ranks is None or not ranks.enabled:
        return list(enumerate(items))
    step = batch * ranks.world_size
    starts = range(ranks.rank * batch, len(items), step)
    return [(i, items[i]) for start in starts for i in range(start, min(start + batch, len(items)))]


def gather(part: list[tuple[int, T]], ranks: DistInfo | None, what: str = "") -> list[T]:
    """Every rank's ``(position, item)`` pairs, on every rank, as one list in position
    order (what one process computes); with ``what``, rank 0 logs how many each predicted."""
    if ranks is None or not ranks.enabled:
        return [item for _, item in sorted(part, key=lambda pair: pair[0])]
    parts: list[Any] = [None] * ranks.world_size
    dist.all_gather_object(parts, part, group=_group())
    if what and ranks.is_main:
        each = ", ".join(f"rank {r}: {len(got)}" for r, got in enumerate(parts))
        total = sum(len(got) for got in parts)
        log.info("%d ranks predicted %d %s (%s)", ranks.world_size, total, what, each)
    return [item for _, item in sorted((p for got in parts for p in got), key=lambda p: p[0])]


def from_main(value: T, ranks: DistInfo | None) -> T:
    """Rank 0's ``value`` on every rank."""
    if ranks is None or not ranks.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, group=_group())
    return box[0]
