"""Experiment trackers (``run.loggers``): MLflow and Weights & Biases (W&B).

Each tracker logs, from rank 0, the resolved configuration as parameters (``section.key``),
every epoch's ``results.csv`` row as metrics at step = epoch (losses, validation losses, lr,
metrics when evaluated, seconds), the final evaluation as ``final/...`` metrics, and at the
end the run folder's report, tables, plots, configuration and best weights as artifacts.
The tracked run's id is kept with the resume state, so ``--resume`` continues the same
tracked run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import require
from .base import Hook
from .writers import epoch_scalars, numbers

if TYPE_CHECKING:
    from ..state import TrainState

log = logging.getLogger("frcnn")

# The run folder's files logged as artifacts at the end (those that exist).
ARTIFACTS = (
    "report.html",
    "results.csv",
    "metrics.json",
    "per_class.csv",
    "per_size.csv",
    "errors_per_class.csv",
    "config.yaml",
    "log.txt",
    "*.png",
    "*.jpg",
    "weights/best.safetensors",
)
EXPERIMENT = "frcnn"  # the experiment (MLflow) or project (W&B) unless the environment names one
PARAM_CHARS = 6000  # MLflow's limit on a parameter value


def flat_params(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested configuration as ``{"section.key": "value"}`` (values as text, cut to
    :data:`PARAM_CHARS`)."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_params(value, f"{name}."))
        else:
            out[name] = str(value)[:PARAM_CHARS]
    return out


def artifact_files(out: Path) -> Iterator[Path]:
    """The run folder's files of :data:`ARTIFACTS` that exist, each once."""
    seen: set[Path] = set()
    for pattern in ARTIFACTS:
        for path in sorted(out.glob(pattern)):
            if path.is_file() and path not in seen:
                seen.add(path)
                yield path


class Tracker(Hook):
    """What every tracker logs and when; a subclass says how (``open``, ``log_params``,
    ``log_metrics``, ``log_artifacts``, ``close``)."""

    priority = 95  # after FinalReport: the report, plots and final metrics exist
    runs_after = ("EvalSchedule", "FinalReport")

    def __init__(self, group: str | None = None) -> None:
        self.group = group  # kfold/tune: the folds or trials of one study
        self.run_id: str | None = None
        self.active = False

    def before_train(self, state: TrainState) -> None:
        if not state.info.is_main:
            return
        resumed = self.run_id is not None
        self.open(state)
        self.active = True
        if not resumed:
            self.log_params(flat_params(state.cfg.to_dict()))
        log.info(
            "%s: run %s%s in %s",
            self.label,
            self.run_id,
            " (resumed)" if resumed else "",
            self.where,
        )

    def after_epoch(self, state: TrainState) -> None:
        if self.active:
            self.log_metrics(epoch_scalars(state), state.epoch + 1)

    def after_train(self, state: TrainState) -> None:
        if not self.active:
            return
        final = numbers(state.metrics)
        if final:
            self.log_metrics({f"final/{k}": v for k, v in final.items()}, state.epoch + 1)
        self.log_artifacts(state.out, list(artifact_files(state.out)))
        self.close()
        self.active = False

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id} if self.run_id else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run_id = state.get("run_id")

    # ---- what a tracker implements ---------------------------------------------------
    label = "tracker"
    where = ""  # the store or project, for the log

    def open(self, state: TrainState) -> None:
        """Start the tracked run, or continue ``self.run_id``; set ``self.run_id``."""
        raise NotImplementedError

    def log_params(self, params: dict[str, str]) -> None:
        raise NotImplementedError

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def log_artifacts(self, out: Path, files: list[Path]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class MLflowTracker(Tracker):
    """MLflow, through its client: ``MLFLOW_TRACKING_URI`` when set, else a SQLite store
    ``mlflow.db`` beside the run folder (artifacts in ``mlruns/`` there); the experiment
    ``MLFLOW_EXPERIMENT_NAME`` or ``frcnn``; the run named after the run folder. Artifacts
    keep the run folder's layout (``weights/best.safetensors``)."""

    label = "MLflow"
    parent_id: str | None = None  # the group's run (a resume does not look it up again)

    def open(self, state: TrainState) -> None:
        require("mlflow", "mlflow", "run.loggers=mlflow")
        from mlflow.tracking import MlflowClient

        for name in ("mlflow", "alembic"):  # their set-up messages are not the run's
            logging.getLogger(name).setLevel(logging.WARNING)
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        parent = state.out.resolve().parent
        self.where = uri or f"sqlite:///{parent / 'mlflow.db'}"
        self.client = MlflowClient(self.where)
        if self.run_id is not None:
            self.client.update_run(self.run_id, status="RUNNING")
            return
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            artifacts = None if uri else (parent / "mlruns").as_uri()
            experiment_id = self.client.create_experiment(name, artifact_location=artifacts)
        else:
            experiment_id = experiment.experiment_id
        tags = {"frcnn.out": str(state.out)}
        if self.group:
            self.parent_id = self._parent(experiment_id)
            tags["frcnn.group"], tags["mlflow.parentRunId"] = self.group, self.parent_id
        run = self.client.create_run(experiment_id, run_name=state.out.name, tags=tags)
        self.run_id = run.info.run_id

    def _parent(self, experiment_id: str) -> str:
        """The run that holds the group's runs (kfold's folds, tune's trials), made once."""
        found = self.client.search_runs(
            [experiment_id], f"tags.`frcnn.group_parent` = '{self.group}'", max_results=1
        )
        if found:
            return found[0].info.run_id
        run = self.client.create_run(
            experiment_id, run_name=self.group, tags={"frcnn.group_parent": self.group}
        )
        return run.info.run_id

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=items)

    def log_artifacts(self, out: Path, files: list[Path]) -> None:
        for path in files:
            folder = path.parent.relative_to(out).as_posix()
            self.client.log_artifact(self.run_id, str(path), None if folder == "." else folder)

    def close(self) -> None:
        self.client.set_terminated(self.run_id, "FINISHED")
        if self.parent_id:  # the group's run ends with its latest member
            self.client.set_terminated(self.parent_id, "FINISHED")


class WandbTracker(Tracker):
    """Weights & Biases: ``wandb.init`` in the run folder (its ``wandb/`` folder), the
    project ``WANDB_PROJECT`` or ``frcnn``, the run named after the run folder; the rest of
    its environment as W&B reads it (``WANDB_MODE=offline``, ``WANDB_ENTITY``, the API key).
    The artifacts are one W&B artifact ``run-<id>`` of type ``frcnn-run``."""

    label = "W&B"

    def open(self, state: TrainState) -> None:
        wandb = require("wandb", "wandb", "run.loggers=wandb")
        self.where = os.environ.get("WANDB_PROJECT") or EXPERIMENT
        resume = {"id": self.run_id, "resume": "allow"} if self.run_id else {}
        self.run = wandb.init(
            project=self.where, name=state.out.name, dir=str(state.out), group=self.group, **resume
        )
        self.run_id = self.run.id

    def log_params(self, params: dict[str, str]) -> None:
        self.run.config.update(params, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def log_artifacts(self, out: Path, files: list[Path]) -> None:
        import wandb

        artifact = wandb.Artifact(f"run-{self.run_id}", type="frcnn-run")
        for path in files:
            artifact.add_file(str(path), name=path.relative_to(out).as_posix())
        self.run.log_artifact(artifact)

    def close(self) -> None:
        self.run.finish()


def trackers(loggers: list[str], group: str | None = None) -> list[Tracker]:
    """The tracker hooks ``run.loggers`` asks for (tensorboard is not one of them)."""
    kinds = {"mlflow": MLflowTracker, "wandb": WandbTracker}
    return [kinds[name](group) for name in loggers if name in kinds]
