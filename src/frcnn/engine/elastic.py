"""A training that ``torchrun --max-restarts N`` starts again after a rank failed (a
process killed, a node lost): the restarted job finds the run folder of its first attempt
and resumes from the last checkpoint there, instead of starting a new numbered run.

The first attempt marks its folder with the job's identity (``.job``: torchrun's run id,
or the launching agent's host and process when the run id is the default ``none``); a
restart (``TORCHELASTIC_RESTART_COUNT`` above 0) looks for that mark in ``run.out`` and its
numbered siblings (``run.out2``, ...)."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from pathlib import Path

from ..config import TrainConfig
from .distributed import DistInfo, broadcast

log = logging.getLogger("frcnn")

MARK = ".job"
CHECKPOINT = Path("weights") / "last.state.pt"


def job_identity() -> str | None:
    """Who launched this process: the same across the restarts of one torchrun job, and
    different for another job; None outside torchrun."""
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    if run_id is None:
        return None
    if run_id != "none":
        return run_id
    return f"{socket.gethostname()}:{os.getppid()}"


def restarted() -> bool:
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


def rejoin(cfg: TrainConfig, info: DistInfo) -> TrainConfig:
    """``cfg`` for a restarted job: ``run.out`` the first attempt's folder and ``run.resume``
    set when that folder holds a checkpoint (decided on rank 0, the same on every rank); as
    given otherwise."""
    if not restarted() or cfg.run.resume:
        return cfg
    found = _first_attempt(cfg.run.out) if info.is_main else None
    found = broadcast(found, info)
    if found is None:
        return cfg
    if info.is_main:
        log.warning("torchrun restarted the job: resuming %s from its last checkpoint", found)
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, out=found, resume=True))


def _first_attempt(out: str) -> str | None:
    """The folder among ``out``, ``out2``, ... that this job marked and that holds a
    checkpoint (without one, the restarted job starts a new run, as the first did)."""
    me = job_identity()
    candidates = [Path(out), *Path(out).parent.glob(f"{Path(out).name}[0-9]*")]
    for folder in candidates:
        mark = folder / MARK
        if mark.is_file() and mark.read_text().strip() == me:
            if (folder / CHECKPOINT).is_file():
                return str(folder)
            log.info("torchrun restarted the job before %s held a checkpoint: a new run", folder)
            return None
    return None


def mark(folder: Path) -> None:
    """Mark ``folder`` as this torchrun job's (nothing outside torchrun)."""
    me = job_identity()
    if me is not None:
        (folder / MARK).write_text(me + "\n")
