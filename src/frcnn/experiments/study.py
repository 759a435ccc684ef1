"""Where an Optuna study lives and how one worker takes its share of it.

``--storage`` names any Optuna storage: an RDB URL (``sqlite:///tune.db``,
``postgresql://user:pass@host/db``, ``mysql+pymysql://...``), a ``.db``/``.sqlite`` path (SQLite),
``redis://host:port`` (a journal in Redis) or any other path (a journal file, Optuna's storage
for a shared file system such as NFS). Several processes on one storage share the study: each
trial runs once, in one worker, and the workers stop together once the requested total of
trials finished; a trial a worker takes after another took the last one is marked failed
(``surplus``) without training. On an RDB storage the workers send heartbeats, so a trial whose
worker died is failed and queued again after :data:`GRACE_S` seconds; a journal has no
heartbeat (``frcnn tune --resume``, with no other worker running, queues it again).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import require

log = logging.getLogger("frcnn")

HEARTBEAT_S = 60
GRACE_S = 3 * HEARTBEAT_S
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
COUNTED = ("COMPLETE", "PRUNED")  # the trials a study's total counts


def open_storage(spec: str | None, out: Path) -> tuple[Any, str]:
    """The Optuna storage ``spec`` names (default: SQLite ``OUT/study.db``, one worker) and how
    to show it (an RDB URL's password hidden)."""
    optuna: Any = require("optuna", "tune", "frcnn tune")
    _quiet()
    if spec is None:
        path = (out / "study.db").resolve()
        return optuna.storages.RDBStorage(f"sqlite:///{path}"), str(out / "study.db")
    shown = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", spec)
    if spec.startswith("redis://"):
        require("redis", "tune", "frcnn tune --storage redis://")
        backend = optuna.storages.journal.JournalRedisBackend(spec)
        return optuna.storages.JournalStorage(backend), shown
    if "://" not in spec and Path(spec).suffix.lower() not in SQLITE_SUFFIXES:
        Path(spec).parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(Path(spec).resolve()))
        return optuna.storages.JournalStorage(backend), shown
    url = spec if "://" in spec else f"sqlite:///{Path(spec).resolve()}"
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(
        url,
        heartbeat_interval=HEARTBEAT_S,
        grace_period=GRACE_S,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(1),
    )
    return storage, shown


def _quiet() -> None:
    """Heartbeats and their retry are marked experimental, and Optuna expects them with
    ``Study.optimize`` (this worker's loop records them itself): not the user's concern."""
    import warnings

    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def worker_name() -> str:
    """``host:pid``, recorded with each trial a worker runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def counted(study: Any, below: int | None = None) -> int:
    """Finished (complete or pruned) trials; with ``below``, those numbered below it that
    finished or are running, in whichever worker."""
    from optuna.trial import TrialState

    states = tuple(TrialState[s] for s in COUNTED)
    if below is None:
        return len(study.get_trials(deepcopy=False, states=states))
    states += (TrialState.RUNNING,)
    return sum(t.number < below for t in study.get_trials(deepcopy=False, states=states))


def work(study: Any, objective: Callable[[Any], float], trials: int, timeout: float | None) -> int:
    """Run trials of ``study`` until ``trials`` of them finished, in this worker or another,
    or ``timeout`` seconds passed (no trial starts after it). Returns the trials this worker
    ran. A trial that raises is marked failed and the error goes on."""
    import optuna

    deadline = None if timeout is None else time.monotonic() + timeout
    ran = 0
    while counted(study) < trials and (deadline is None or time.monotonic() < deadline):
        optuna.storages.fail_stale_trials(study)
        trial = study.ask()
        trial.set_user_attr("worker", worker_name())
        if counted(study, below=trial.number) >= trials:  # another worker took the last one
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            log.info("trial %d not run: the study has its %d trials", trial.number + 1, trials)
            break
        ran += 1
        _run_trial(study, trial, objective)
    return ran


def _run_trial(study: Any, trial: Any, objective: Callable[[Any], float]) -> None:
    import optuna

    TrialState = optuna.trial.TrialState
    try:
        with _heartbeat(study, trial):
            value = objective(trial)
    except optuna.TrialPruned as why:
        log.info("%s", why)
        study.tell(trial, state=TrialState.PRUNED)
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    else:
        study.tell(trial, value)
        log.info("trial %d: score %.4f", trial.number + 1, value)


@contextmanager
def _heartbeat(study: Any, trial: Any) -> Iterator[None]:
    """Every :data:`HEARTBEAT_S` seconds while the trial runs, the storage records that its
    worker is alive (storages with heartbeats only)."""
    storage = study._storage
    interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial._trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="frcnn-tune-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
