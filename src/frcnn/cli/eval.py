"""``frcnn eval``: COCO metrics, per-class table, F1 and curves of a model or a results file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import ERROR_TYPES
from ..errors import InputError

if TYPE_CHECKING:
    from ..evaluation.report import EvalResult

from .common import (
    FORMATS,
    add_merge_args,
    add_precision_arg,
    add_run_args,
    add_tile_args,
    inference_options,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="COCO metrics, per-class table, F1, curves")
    p.add_argument("--weights", nargs="+", help="frcnn model file (several: an ensemble)")
    p.add_argument("--data", help="ground truth (any supported format)")
    p.add_argument(
        "--run",
        help="a training run folder: score its recorded validation images with its best "
        "weights, tiled as it trained (instead of --data/--weights)",
    )
    p.add_argument("--predictions", help="score this COCO results file instead of running a model")
    p.add_argument("--split", help="split of --data (default train, or the only one)")
    p.add_argument("--format", choices=FORMATS)
    p.add_argument("--out", help="folder for metrics.json, per_class.csv and plots")
    add_run_args(p, "score threshold for P/R/F1 and the confusion matrix")
    add_tile_args(p, "evaluate")
    add_merge_args(p)
    add_precision_arg(p)
    p.add_argument(
        "--calibrated",
        action="store_true",
        help="score with the model file's calibration (frcnn calibrate): its ECE on these images",
    )
    p.add_argument(
        "--size-bins",
        nargs="+",
        type=float,
        metavar="PX",
        help="box sides in pixels bounding the per-size bins, e.g. 0 16 32 inf "
        "(default COCO's 0 32 96 inf)",
    )
    p.add_argument(
        "--worst", type=int, default=8, help="images in worst_images.jpg (with --out; 0: none)"
    )
    p.add_argument(
        "--worst-by",
        choices=ERROR_TYPES,
        help="rank the worst images by one error type (default: all errors)",
    )
    p.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="score a model whose class names differ from the data's (labels compared by number)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..api import evaluate
    from ..evaluation.report import EvalOptions

    if not (args.data or args.run):
        raise InputError("give --data DATA (with --weights or --predictions), or --run RUN")
    result = evaluate(
        args.weights,
        args.data,
        inference_options(args),
        split=args.split,
        format=args.format,
        out=args.out,
        predictions=args.predictions,
        run=args.run,
        scoring=EvalOptions(size_bins=args.size_bins, worst=args.worst, worst_by=args.worst_by),
        allow_mismatch=args.allow_mismatch,
    )
    report(result, args.out)
    return 0


def report(result: EvalResult, out: str | None) -> None:
    """What ``frcnn eval`` prints: COCO summary, per-class and per-size tables, P/R/F1 at
    the threshold, the error breakdown and the calibration error."""
    print(result.coco_summary.rstrip())
    print(result.table())
    print(
        f"at conf {result.conf}: P {_precision(result.precision)} R {result.recall:.4f} "
        f"F1 {result.f1:.4f}; score {result.score:.4f} (F1 would peak at {result.f1_best:.4f} "
        f"with threshold {result.best_threshold:.3f})"
    )
    if result.sizes is not None:
        print(
            f"\nper size (box side in px: {result.sizes.bins_text()}; all classes, per class in per_size.csv):"
        )
        print(result.sizes.table())
    if result.errors is not None:
        print(
            f"\nerrors (TIDE; AP50 {result.errors.ap50:.3f} by its rules; dAP50 = AP50 gained by "
            "fixing only that type):"
        )
        print(result.errors.table())
    if result.calibration is not None:
        c = result.calibration
        ece = "undefined (no detections)" if c.ece != c.ece else f"{c.ece:.4f}"
        print(
            f"\ncalibration: ECE {ece} over {int(c.count.sum())} detections (score against "
            "precision at IoU 0.5; `frcnn calibrate` fits a map)"
        )
    if out:
        print(f"wrote {Path(out) / 'report.html'}, metrics.json, the tables and plots")


def _precision(value: float) -> str:
    return "undefined (no detections)" if value != value else f"{value:.4f}"
