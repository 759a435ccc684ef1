"""``frcnn kfold``: K-fold cross-validation, out-of-fold predictions and label issues."""

from __future__ import annotations

import argparse

from ..errors import InputError
from .train import add_train_options, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "kfold",
        help="K-fold cross-validation: a model per fold, out-of-fold predictions, label issues",
        description="Split --data by image into K folds (stratified by class presence, "
        "grouped with --group-by), train a fresh model per fold with the train options, "
        "predict each fold's held-out images, and rank likely label errors from those "
        "out-of-fold predictions.",
    )
    p.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    p.add_argument(
        "--group-by",
        help="keep related images in one fold: source_image (tiles of one image: the name "
        "without _x_y or @x,y), folder, field:NAME (a COCO image field, e.g. "
        "field:patient_id), or a regular expression whose first group is the key",
    )
    p.add_argument(
        "--no-label-issues", action="store_true", help="skip the label-issue ranking at the end"
    )
    p.add_argument(
        "--fold",
        type=int,
        help="train only fold K (1..--folds) into --out, shared with the other folds' jobs; "
        "the job that completes the last fold writes the summary",
    )
    p.add_argument(
        "--collect",
        action="store_true",
        help="write the summary, out-of-fold predictions and label issues of the folds in "
        "--out now (from those present)",
    )
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments.kfold import run_kfold

    if args.resume:
        raise InputError("kfold does not resume; start it again with a new --out")
    if (args.fold is not None or args.collect) and not args.out:
        raise InputError("--fold and --collect need --out: the folder the fold jobs share")
    cfg = config_from_args(args, skip=("out",))
    result = run_kfold(
        cfg,
        args.folds,
        args.group_by,
        args.out or "runs/kfold",
        not args.no_label_issues,
        args.fold,
        args.collect,
    )
    if result is None:
        print(
            f"fold {args.fold} of {args.folds} done in {args.out}; the summary is written when "
            "every fold is (or with --collect)"
        )
        return 0
    print(result.table())
    oof = result.oof_metrics
    print(
        f"out-of-fold (all {oof.num_images} images): mAP {oof.coco['AP']:.4f}  "
        f"mAP50 {oof.coco['AP50']:.4f}  F1 {oof.f1_at_conf:.4f}  score {oof.score:.4f}"
    )
    print(f"folder: {result.out} (summary.csv, oof_predictions.json, fold*/)")
    if result.label_issues:
        print(f"label issues: {result.label_issues}")
    return 0
