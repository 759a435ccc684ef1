"""The run folder, the log, seeding and the RNG states that ``--resume`` restores."""

from __future__ import annotations

import logging
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .distributed import DistInfo

log = logging.getLogger("frcnn")


def run_folder(path: str, resume: bool) -> Path:
    """``path``, or ``path2``, ``path3`` ... when it is taken and this is not a resume."""
    out = Path(path)
    if resume or not out.exists() or not any(p.name != LOCK_FILE for p in out.iterdir()):
        return out
    n = 2
    while Path(f"{path}{n}").exists():
        n += 1
    return Path(f"{path}{n}")


LOCK_FILE = ".lock"


class RunLock:
    """The run folder held by this process while it trains into it: ``.lock`` in the
    folder, locked with ``flock`` (released when the process ends, however it ends) and
    holding the process id. A second process is refused, naming the holder.

    Raises:
        InputError: another process holds the folder."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # no flock (Windows): the folder is not locked
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = self.path.read_text().strip() or "unknown"
            self.release()
            raise InputError(
                f"{folder} is in use: process {holder} is training into it; wait for it to "
                "finish (or stop it), or train into another --out"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __del__(self) -> None:
        self.release()


def setup_logging(out: Path | None, info: DistInfo) -> None:
    """The ``frcnn`` logger: to stderr, and to ``out/log.txt`` on the main process."""
    log.setLevel(logging.INFO if info.is_main else logging.WARNING)
    if out is not None and info.is_main:
        for h in list(log.handlers):
            if isinstance(h, logging.FileHandler):
                log.removeHandler(h)
        handler = logging.FileHandler(out / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    streams = [
        h
        for h in log.handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]
    for h in streams:  # a later run in one process writes to today's stderr
        if h.stream is not sys.stderr:
            log.removeHandler(h)
    if not any(h in log.handlers for h in streams):
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(stream)
    log.propagate = False


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (third-party code may use the global RNG)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def rng_state() -> dict:
    """Every global RNG's state as plain containers and tensors (``weights_only`` loadable)."""
    np_state = np.random.get_state()  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
