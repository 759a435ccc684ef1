"""``frcnn ensemble``: several models fused per image; evaluated on --data or predicted on
sources."""

from __future__ import annotations

import argparse

from ..errors import InputError
from .common import (
    FORMATS,
    add_merge_args,
    add_run_args,
    add_tile_args,
    inference_options,
    split_weights,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ensemble",
        help="fuse several models (WBF, NMS, soft-NMS, NMW): evaluate on --data or predict",
        description="Run every --weights model on each image and fuse their detections "
        "(Weighted Boxes Fusion by default, with the ensemble-boxes library). With --data, "
        "score the fused detections like frcnn eval; with image sources, write them like "
        "frcnn predict.",
    )
    p.add_argument("--weights", nargs="+", required=True, help="frcnn model files")
    p.add_argument("sources", nargs="*", help="images, folders or globs to predict on")
    p.add_argument("--data", help="ground truth to evaluate the fused detections on")
    p.add_argument("--split", help="split of --data")
    p.add_argument("--format", choices=FORMATS, help="format of --data")
    p.add_argument("--out", help="output folder")
    p.add_argument(
        "--save-images", action="store_true", help="also write the images with boxes drawn"
    )
    add_run_args(p)
    add_tile_args(p)
    add_merge_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..api import evaluate, predict
    from . import eval as eval_command
    from . import predict as predict_command

    args.weights, args.sources = split_weights(args.weights, args.sources)
    if bool(args.data) == bool(args.sources):
        raise InputError("give either --data DATA (evaluate) or image sources (predict)")
    options = inference_options(args)
    print(describe(args.weights, options))
    if args.data:
        result = evaluate(
            args.weights, args.data, options, split=args.split, format=args.format, out=args.out
        )
        eval_command.report(result, args.out)
        return 0
    results = predict(
        args.weights, args.sources, options, out=args.out, save_images=args.save_images
    )
    predict_command.report(results, args.out, "json")
    return 0


def describe(weights: list[str], options: object) -> str:
    """What is fused, and how: the models (with their weights when given) and the method."""
    from ..words import count

    m = options.ensemble
    given = m.model_weights or ()
    if given and len(given) != len(weights):
        raise InputError(f"{len(given)} --model-weights given for {len(weights)} models")
    names = [f"{w} (weight {given[i]:g})" if given else str(w) for i, w in enumerate(weights)]
    how = m.method if m.method == "soft-nms" else f"{m.method} (IoU {m.iou:g})"
    tta = f", each with test-time augmentation ({options.tta})" if options.tta else ""
    return f"ensemble of {count(len(weights), 'model')} fused by {how}{tta}: {', '.join(names)}"
