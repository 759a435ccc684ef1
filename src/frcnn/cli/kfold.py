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
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..experiments.kfold import run_kfold

    if args.resume:
        raise InputError("kfold does not resume; start it again with a new --out")
    cfg = config_from_args(args, skip=("out",))
    result = run_kfold(
        cfg, args.folds, args.group_by, args.out or "runs/kfold", not args.no_label_issues
    )
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
