"""``frcnn tune``: an Optuna hyperparameter search that writes the best config."""

from __future__ import annotations

import argparse

from .train import add_train_options, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="Optuna search over training settings; writes best.yaml for train --config",
        description="Each trial trains with the train options plus values the TPE sampler "
        "proposes (default: optim.lr log-uniform 1e-4..1e-2, data.batch_size 4 or 8, "
        "eval.conf 0.1..0.9); a median pruner stops trials that fall behind; the study is "
        "kept in OUT/study.db, and --resume --out OUT continues it. With --storage, any "
        "number of frcnn tune processes, on one machine or many, share one study.",
    )
    p.add_argument("--trials", type=int, default=20, help="trials to finish (default 20)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument(
        "--space",
        help="YAML search space: config key -> {type, low, high, log} or {type: categorical, choices}",
    )
    p.add_argument(
        "--ensemble-top",
        type=int,
        default=0,
        help="score each trial by the WBF ensemble of its K best checkpoints (e.g. 3)",
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        help="an Optuna storage that several workers share: an RDB URL (sqlite:///tune.db, "
        "postgresql://user:pass@host/db), a .db file, redis://host:port, or a journal file "
        "(any other path; for NFS); default: OUT/study.db, this process only",
    )
    p.add_argument("--study-name", help="the study's name in the storage (default frcnn-tune)")
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..experiments.tune import read_space, run_tune

    space = read_space(args.space)
    resume = bool(args.resume)
    args.resume = False  # resumes the study, not a training run
    cfg = config_from_args(args, skip=("out",))
    recipe = load_config(args.config)  # the user's configuration without the search's settings
    result = run_tune(
        cfg,
        args.trials,
        args.timeout,
        space,
        args.out or "runs/tune",
        resume,
        args.ensemble_top,
        recipe=recipe,
        storage=args.storage,
        study_name=args.study_name,
    )
    values = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in result.best_params.items()
    )
    print(f"best of {result.finished} finished trials: score {result.best_value:.4f} with {values}")
    print(f"best config: {result.best_config} (frcnn train --config {result.best_config})")
    print(f"study: {result.where}; {result.out}: trials.csv, optimization_history.png")
    return 0
