"""``frcnn eval``: COCO metrics, per-class table, F1 and curves of a model or a results file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import BATCH_SIZE, CONF

if TYPE_CHECKING:
    from ..evaluation.report import EvalResult

from .common import FORMATS, add_merge_args, add_tile_args, merge_options


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
    p.add_argument(
        "--conf", type=float, default=CONF, help=f"score threshold for P/R/F1 (default {CONF})"
    )
    add_tile_args(p, "evaluate")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--device", default="auto")
    add_merge_args(p)
    p.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="score a model whose class names differ from the data's (labels compared by number)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..api import evaluate

    if not (args.data or args.run):
        raise ValueError("give --data DATA (with --weights or --predictions), or --run RUN")
    weights = args.weights[0] if args.weights and len(args.weights) == 1 else args.weights
    result = evaluate(
        weights,
        args.data,
        args.split,
        args.out,
        args.conf,
        args.batch_size,
        args.predictions,
        args.format,
        args.device,
        args.allow_mismatch,
        args.tile,
        args.overlap,
        args.max_det,
        run=args.run,
        **merge_options(args),
    )
    report(result, args.out)
    return 0


def report(result: EvalResult, out: str | None) -> None:
    """What ``frcnn eval`` prints."""
    print(result.coco_summary.rstrip())
    print(result.table())
    p, p_conf = _precision(result.precision), _precision(result.precision_at_conf)
    print(
        f"F1 {result.f1:.4f} at the best score threshold {result.best_threshold:.3f} "
        f"(P {p}, R {result.recall:.4f}); at conf {result.conf}: "
        f"P {p_conf} R {result.recall_at_conf:.4f} F1 {result.f1_at_conf:.4f}; "
        f"score {result.score:.4f}"
    )
    if out:
        print(f"wrote {Path(out) / 'metrics.json'}, per_class.csv and plots")


def _precision(value: float) -> str:
    return "undefined (no detections)" if value != value else f"{value:.4f}"
