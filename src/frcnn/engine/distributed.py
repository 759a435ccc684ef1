"""torch.distributed glue: one process per device under ``torchrun``; rank 0 writes."""

from __future__ import annotations

import atexit
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger("frcnn")


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the process group when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        join_group("nccl" if torch.cuda.is_available() else "gloo")
    return info


_JOINS = [0]  # process groups this process joined, in the same order on every rank


def join_group(backend: str) -> None:
    """Join torchrun's process group, its keys in the launcher's store under a prefix of
    their own: a job torchrun restarted (``--max-restarts``), or a group joined again in one
    process, shares that store with the group before it, whose stale addresses a plain
    ``init_process_group`` may read (gloo then fails with "Connection refused").

    A group still joined when the process exits is left at exit, while the interpreter is
    alive: gloo's worker threads outlive an undestroyed group and abort the process
    ("terminate called without an active exception") during interpreter teardown."""
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store, rank, world = next(dist.rendezvous("env://"))
    prefix = f"frcnn/attempt{attempt}/group{_JOINS[0]}"
    _JOINS[0] += 1
    dist.init_process_group(
        backend, store=dist.PrefixStore(prefix, store), rank=rank, world_size=world
    )
    if _JOINS[0] == 1:
        atexit.register(leave_group)


def leave_group() -> None:
    """Leave the process group this process is in, if any."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_gather_list(items: list, info: DistInfo) -> list:
    """Every rank's list, concatenated in rank order (all ranks get the result)."""
    if not info.enabled:
        return items
    gathered: list[list] = [[] for _ in range(info.world_size)]
    dist.all_gather_object(gathered, items)
    return [x for part in gathered for x in part]


def broadcast(value: object, info: DistInfo) -> object:
    """Rank 0's value on every rank."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def cleanup(info: DistInfo) -> None:
    if info.enabled:
        leave_group()


def broadcast_values(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Rank 0's numbers on every rank, as one small tensor broadcast (cheap enough for every
    step, unlike pickling objects)."""
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return t.tolist()


def sync_batch_norms(model: torch.nn.Module, norm: str, info: DistInfo, device: torch.device):
    """``model`` with its BatchNorms synchronised across processes when ``norm`` is
    ``syncbn`` in a multi-GPU run; unchanged otherwise (a single process has nothing to
    synchronise, and SyncBatchNorm needs GPUs: a CPU run keeps BatchNorm and says so)."""
    if norm != "syncbn" or not info.enabled:
        return model
    if device.type != "cuda":
        if info.is_main:
            log.warning("warning: norm syncbn needs GPUs; this CPU run keeps per-process BatchNorm")
        return model
    if any(type(m).__module__.startswith("timm.") for m in model.modules()):
        # timm's BatchNormAct2d carries its activation; timm's converter keeps it
        from timm.layers import convert_sync_batchnorm

        return convert_sync_batchnorm(model)
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
