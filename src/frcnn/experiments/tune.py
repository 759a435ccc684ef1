"""``frcnn tune``: an Optuna study over training settings: the TPE
sampler proposes values, each trial trains a run, a median pruner stops trials whose
per-epoch validation score falls behind, and the study lives in SQLite in the output
folder so an interrupted study resumes where it stopped, or in a storage that several
workers share (``--storage``, :mod:`frcnn.experiments.study`).

The folder (``--out``, numbered if taken unless resuming): ``base.yaml`` (the
configuration every trial starts from), ``study.db``, ``trial<N>/`` (run folders),
``trials.csv``, ``best.yaml`` (the best values on the user's configuration, without the
search's own settings: ``frcnn train --config`` takes it), ``optimization_history.png`` and
``param_importances.png``.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..checks import check_value
from ..config import TrainConfig, load_config
from ..engine.hooks import Hook
from ..engine.run_folder import run_folder
from ..engine.trainer import train
from ..errors import InputError, InputTypeError, SetupError, require
from ..io.atomic import atomic_write_csv
from ..io.yaml_file import read_yaml
from .study import counted, open_storage, work

log = logging.getLogger("frcnn")

STUDY = "frcnn-tune"
# What only the search needs, left out of best.yaml: each trial's folder, its time budget and
# how often it validates (the final training takes them from the recipe, or its defaults).
SEARCH_ONLY = (
    "eval.every",
    "schedule.time_budget",
    "run.out",
    "run.group",
    "run.resume",
    "run.stop_after_epochs",
)
# Paths best.yaml writes absolute, so that it trains the same data from any folder.
PATH_KEYS = ("data.train", "data.val", "data.images", "model.weights")
# What matters most on a small dataset: learning rate (log-uniform), batch size 4 or 8,
# score threshold.
DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
    "data.batch_size": {"type": "categorical", "choices": [4, 8]},
    "eval.conf": {"type": "float", "low": 0.1, "high": 0.9},
}


def read_space(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """The search space: :data:`DEFAULT_SPACE`, or a YAML file mapping config keys to
    ``{type: float|int, low, high, log}`` or ``{type: categorical, choices: [...]}``.

    Raises:
        ValueError: a malformed entry, naming it; KeyError: a key that is no config key.
    """
    space = DEFAULT_SPACE if path is None else read_yaml(Path(path))
    if not isinstance(space, dict) or not space:
        raise InputError(f"{path}: a search space maps config keys to ranges")
    for key, spec in space.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        ok = (kind in ("float", "int") and {"low", "high"} <= set(spec)) or (
            kind == "categorical" and isinstance(spec.get("choices"), list) and spec["choices"]
        )
        if not ok:
            raise InputError(
                f"{path}: {key}: expected {{type: float|int, low, high[, log]}} or "
                f"{{type: categorical, choices: [...]}}, got {spec!r}"
            )
    where = path or "the default search space"
    for key, spec in space.items():
        _check_entry(key, spec, where)
    return space


# Keys a search may not set: where data and runs are, and the search's own settings.
NOT_SEARCHED = ("data.train", "data.val", "data.images", "data.format", *SEARCH_ONLY)


def _check_entry(key: str, spec: dict[str, Any], where: object) -> None:
    """A space entry's key is a config key the search may set, and every value it can
    take is one the key can mean: low <= high, both ends (or each choice) checked by the
    table of checks (:mod:`frcnn.checks`), log ranges above 0.

    Raises:
        UnknownKeyError: not a config key. InputError: naming the file and key.
    """
    if key in NOT_SEARCHED:
        raise InputError(
            f"{where}: {key} cannot be searched (it says where data and runs are, or how the "
            "search itself runs); set it on the command line instead"
        )
    values = spec["choices"] if spec["type"] == "categorical" else [spec["low"], spec["high"]]
    for value in values:
        try:
            check_value(key, value)
            load_config(None, [], **{key: value})  # a known key, a value of its type
        except (InputError, InputTypeError) as err:
            raise type(err)(f"{where}: {key}: {err}") from None
    if spec["type"] != "categorical":
        low, high = spec["low"], spec["high"]
        if not low <= high:
            raise InputError(f"{where}: {key}: low {low!r} is above high {high!r}")
        if spec.get("log") and low <= 0:
            raise InputError(f"{where}: {key}: a log range needs low > 0, got {low!r}")


def _suggest(trial: Any, key: str, spec: dict[str, Any]) -> Any:
    if spec["type"] == "categorical":
        return trial.suggest_categorical(key, spec["choices"])
    suggest = trial.suggest_float if spec["type"] == "float" else trial.suggest_int
    return suggest(key, spec["low"], spec["high"], log=bool(spec.get("log", False)))


class OptunaPruning(Hook):
    """Reports each evaluated epoch's score to the trial and stops the run when the
    pruner says so (``optuna.TrialPruned`` leaves the trainer; the run folder stays)."""

    def __init__(self, trial: Any) -> None:
        self.trial = trial

    def after_epoch(self, trainer: Any) -> None:
        import optuna

        if trainer.result is None:
            return
        self.trial.report(float(trainer.result.score), trainer.epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"trial {self.trial.number + 1} pruned after epoch {trainer.epoch + 1} "
                f"(score {trainer.result.score:.4f} under the median of earlier trials)"
            )


@dataclass
class TuneResult:
    out: Path
    best_params: dict[str, Any]
    best_value: float
    best_config: Path
    finished: int
    where: str = ""  # the storage, as shown


def run_tune(
    cfg: TrainConfig,
    trials: int,
    timeout: float | None = None,
    space: dict[str, dict[str, Any]] | None = None,
    out: str | Path = "runs/tune",
    resume: bool = False,
    ensemble_top: int = 0,
    callbacks: Sequence[Hook] = (),
    recipe: TrainConfig | None = None,
    storage: str | None = None,
    study_name: str | None = None,
) -> TuneResult:
    """Run (or, with ``resume``, continue) a study until ``trials`` trials finished
    (complete or pruned) or ``timeout`` seconds passed. A trial's value is its best
    validation ``score`` (0.5 mAP50 + 0.5 F1 at its ``eval.conf``), or with
    ``ensemble_top`` K >= 2 the score of its K best checkpoints fused by WBF.
    ``best.yaml`` takes the :data:`SEARCH_ONLY` settings from ``recipe`` (the configuration
    without the search's command-line settings; default: frcnn's defaults). With ``storage``
    (see :mod:`frcnn.experiments.study`) this process is one worker of a shared study named
    ``study_name`` (default :data:`STUDY`): it joins the study if it exists, and ``out`` is used as given."""
    optuna: Any = require("optuna", "tune", "frcnn tune")
    if ensemble_top >= 2:
        require("ensemble_boxes", "ensemble", "frcnn tune --ensemble-top")

    space = space or DEFAULT_SPACE
    if resume and storage is None and not (Path(out) / "study.db").is_file():
        raise InputError(
            f"--resume: {out} holds no study (no study.db): give the --out folder of an "
            "earlier frcnn tune, or start a new study without --resume"
        )
    shared = storage is not None
    out = Path(out) if shared else run_folder(str(out), resume)
    _write_base(cfg, out, resume, shared)
    place, shown = open_storage(storage, out)
    study_name = study_name or STUDY
    study = optuna.create_study(
        study_name=study_name,
        storage=place,
        load_if_exists=resume or shared,
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    # A resumed study's sampler moves on: seeded as a fresh one, it would propose the values
    # of the trials already run again; workers of one study are seeded apart, and each
    # counts the others' running trials as tried (constant liar).
    seed = cfg.run.seed + len(study.trials) + (os.getpid() if shared else 0)
    study.sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=shared)
    if "final_values" not in study.user_attrs:  # kept with the study for --resume
        plain = recipe or TrainConfig()
        study.set_user_attr("final_values", {k: plain.value(k) for k in SEARCH_ONLY})
    if resume:
        _retry_interrupted(study, place)
    log.info("study %s in %s: %d of %d trials finished", study_name, shown, counted(study), trials)
    work(study, _Objective(out, space, ensemble_top, callbacks), trials, timeout)
    return _write_outputs(study, out, shown)


def _write_base(cfg: TrainConfig, out: Path, resume: bool, shared: bool) -> None:
    """``OUT/base.yaml``, the configuration every trial starts from; a resumed study keeps
    the one it has, and a worker joining a shared study whose configuration differs is
    refused."""
    out.mkdir(parents=True, exist_ok=True)
    base = out / "base.yaml"
    if base.is_file() and resume:
        return
    if base.is_file() and shared:
        if base.read_text() != yaml.safe_dump(cfg.to_dict(), sort_keys=False):
            raise InputError(
                f"{out} holds a study started from another configuration ({base}); give "
                "this worker the same options, or another --out"
            )
        return
    cfg.save(base)


class _Objective:
    def __init__(self, out: Path, space: dict, ensemble_top: int, callbacks: Sequence[Hook]):
        self.out, self.space, self.ensemble_top, self.callbacks = (
            out,
            space,
            ensemble_top,
            callbacks,
        )

    def __call__(self, trial: Any) -> float:
        import optuna

        params = {key: _suggest(trial, key, spec) for key, spec in self.space.items()}
        run = self.out / f"trial{trial.number + 1}"  # counted from 1, as folds and epochs
        trial.set_user_attr("run", str(run))
        log.info("trial %d: %s", trial.number + 1, ", ".join(f"{k}={v}" for k, v in params.items()))
        cfg = load_config(self.out / "base.yaml", [], **params, **{"run.out": str(run)})
        cfg.run.group = cfg.run.group or self.out.name  # trackers: the trials as one group
        hooks = [OptunaPruning(trial), *self.callbacks]
        try:
            result = train(cfg, hooks)
        except FloatingPointError as err:  # a diverging learning rate: unpromising, not broken
            raise optuna.TrialPruned(f"trial {trial.number + 1} diverged: {err}") from None
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        value = float(result.metrics.get("score", 0.0))
        if self.ensemble_top >= 2:
            value = _ensemble_score(result.out, self.ensemble_top, value)
        for key in ("AP50", "AP", "F1_at_conf"):
            trial.set_user_attr(key, float(result.metrics.get(key, 0.0)))
        return value


def _ensemble_score(run: Path, top: int, single: float) -> float:
    """The validation score of the run's ``top`` best checkpoints fused by WBF, on the
    validation images the run recorded, tiled and counted as it trained (the run's own
    score when it kept fewer than two)."""
    from ..api import evaluate

    checkpoints = sorted((run / "weights").glob("epoch*.safetensors"))
    if len(checkpoints) < 2:
        log.info("%s: fewer than 2 checkpoints kept; scoring the single model", run)
        return single
    scores = _checkpoint_scores(run)
    best = sorted(checkpoints, key=lambda p: -scores.get(p.stem, 0.0))[:top]
    result = evaluate([str(p) for p in best], run=run)  # at the run's threshold
    log.info(
        "%s: WBF of %d checkpoints scores %.4f (best single %.4f)",
        run,
        len(best),
        result.score,
        single,
    )
    return float(result.score)


def _checkpoint_scores(run: Path) -> dict[str, float]:
    """``epoch<N>`` -> that epoch's validation score, from the run's results.csv."""
    with (run / "results.csv").open() as f:
        return {f"epoch{int(r['epoch'])}": float(r["score"] or 0) for r in csv.DictReader(f)}


def _retry_interrupted(study: Any, storage: Any) -> None:
    """Trials a Ctrl-C or a kill stopped are marked failed and queued again with their
    values (once each), so a resumed study tries them first."""
    from optuna.trial import TrialState

    retried = set(study.user_attrs.get("retried", []))
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.FAIL)):
        if t.state == TrialState.RUNNING:  # killed: nothing marked it
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        elif not t.user_attrs.get("interrupted"):
            continue
        if t.number in retried:
            continue
        retried.add(t.number)
        study.enqueue_trial(t.params, skip_if_exists=False)
        log.info("trial %d was interrupted; queued again with the same values", t.number + 1)
    study.set_user_attr("retried", sorted(retried))


def _write_outputs(study: Any, out: Path, where: str) -> TuneResult:
    """trials.csv (a ``surplus`` trial was taken after another worker took the study's last
    one, and did not run), best.yaml and the study's plots, from the study as it stands:
    the last worker of a shared study to stop writes every trial."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    keys = sorted({k for t in trials for k in t.params})
    rows = [
        {
            "trial": t.number + 1,
            "state": "surplus" if t.user_attrs.get("surplus") else t.state.name.lower(),
            "value": "" if t.value is None else round(t.value, 6),
            **{k: t.params.get(k, "") for k in keys},
            "seconds": round(t.duration.total_seconds(), 1) if t.duration else "",
            "run": t.user_attrs.get("run", ""),
            "worker": t.user_attrs.get("worker", ""),
        }
        for t in trials
    ]
    header = ["trial", "state", "value", *keys, "seconds", "run", "worker"]
    atomic_write_csv(out / "trials.csv", header, rows)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise SetupError(f"no trial of the study in {out} completed; see {out / 'trials.csv'}")
    best = study.best_trial
    final_config(out / "base.yaml", best.params, study.user_attrs.get("final_values", {})).save(
        out / "best.yaml"
    )
    _plots(study, out)
    return TuneResult(
        out, dict(best.params), float(best.value), out / "best.yaml", counted(study), where
    )


def final_config(base: Path, params: dict[str, Any], final: dict[str, Any]) -> TrainConfig:
    """The configuration a user trains the winner with: ``base`` with the tuned ``params``,
    the :data:`SEARCH_ONLY` settings as ``final`` gives them (``run.out`` the training
    default), and the data and weights paths absolute."""
    cfg = load_config(base, [], **params)
    for key in SEARCH_ONLY:
        _assign(cfg, key, final.get(key, TrainConfig().value(key)))
    cfg.run.out = TrainConfig().run.out
    for key in PATH_KEYS:
        value = cfg.value(key)
        if isinstance(value, str) and value and Path(value).exists():
            _assign(cfg, key, str(Path(value).resolve()))
    return cfg.validate()


def _assign(cfg: TrainConfig, dotted: str, value: Any) -> None:
    section, _, key = dotted.partition(".")
    setattr(getattr(cfg, section), key, value)


def _plots(study: Any, out: Path) -> None:
    import warnings

    from optuna.exceptions import ExperimentalWarning

    from ..evaluation.plots import plt

    warnings.filterwarnings("ignore", category=ExperimentalWarning)  # optuna's plots: stable for us

    from optuna.visualization import matplotlib as ovm

    ax = ovm.plot_optimization_history(study)
    ax.figure.savefig(out / "optimization_history.png", dpi=100, bbox_inches="tight")
    plt.close(ax.figure)
    try:
        ax = ovm.plot_param_importances(study)
    except (RuntimeError, ValueError) as err:  # too few finished trials to attribute variance
        log.warning("no parameter importances yet: %s", err)
        return
    ax.figure.savefig(out / "param_importances.png", dpi=100, bbox_inches="tight")
    plt.close(ax.figure)
