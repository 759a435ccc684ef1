"""``frcnn label-issues``: rank likely annotation errors from out-of-fold predictions."""

from __future__ import annotations

import argparse

from .common import FORMATS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label-issues",
        help="rank likely label errors (missing, spurious, swapped, badly drawn) from "
        "out-of-fold predictions",
    )
    p.add_argument("--data", required=True, help="the labelled data (any supported format)")
    p.add_argument(
        "--predictions",
        required=True,
        help="COCO results of models that did not train on these images (frcnn kfold "
        "writes oof_predictions.json)",
    )
    p.add_argument("--split", help="split of --data")
    p.add_argument("--format", choices=FORMATS)
    p.add_argument("--out", default="runs/label_issues", help="output folder")
    p.add_argument(
        "--conf",
        type=float,
        help="score of a confident detection (default: the threshold the predictions file "
        "was made at, as frcnn kfold records it; 0.5 for a file without one)",
    )
    p.add_argument("--top", type=int, default=24, help="issues drawn in gallery.jpg (default 24)")
    p.add_argument("--show", type=int, default=10, help="issues printed (default 10)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.check import check_dataset, warn_skipped
    from ..data.sources import read_dataset
    from ..evaluation.coco import read_coco_results, results_conf
    from ..evaluation.report import evaluate_detections
    from ..experiments.label_issues import find_label_issues, weak_models_note, write_label_issues

    ds, report = check_dataset(read_dataset(args.data, args.format, args.split), "header")
    warn_skipped(report, str(args.data))
    preds = read_coco_results(args.predictions, ds)
    conf = args.conf if args.conf is not None else results_conf(args.predictions, 0.5)
    issues = find_label_issues(ds, preds, conf)
    ap50 = float(evaluate_detections(ds, preds, conf).coco["AP50"])
    path = write_label_issues(issues, ds, preds, args.out, args.top, conf, ap50)
    names = ds.class_names
    for n, i in enumerate(issues[: args.show], start=1):
        what = {
            "missing_label": f"unlabelled {names[i.pred_label - 1]}? (score {i.score:.2f})",
            "swapped_label": f"{names[i.gt_label - 1]} looks like {names[i.pred_label - 1]} "
            f"(score {i.score:.2f})",
            "bad_box": f"{names[i.gt_label - 1]} box off the object (IoU {i.iou:.2f})",
            "spurious_label": f"{names[i.gt_label - 1]}: nothing found there",
        }[i.kind]
        print(f"{n:>3}. {i.rank:.2f} {i.kind:<15} {i.file_name}: {what}")
    print(f"{len(issues)} likely issues: {path}")
    note = weak_models_note(ap50)
    if note:
        print(f"warning: {note}")
    return 0
