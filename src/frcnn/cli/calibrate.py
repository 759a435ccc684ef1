"""``frcnn calibrate``: fit a score calibration on validation images and keep it in the model
file."""

from __future__ import annotations

import argparse

from ..defaults import CALIBRATION_METHODS
from .common import FORMATS, add_run_args, add_tile_args, inference_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="make scores probabilities: fit temperature or isotonic scaling on validation data",
        description="Fit a map from scores to the chance a detection is right (precision at "
        "IoU 0.5) on images the model did not train on, and write the model file with it. "
        "`predict --calibrated` and `eval --calibrated` then use it; the ranking, and so mAP, "
        "is unchanged.",
    )
    p.add_argument("--weights", required=True, help="frcnn model file")
    p.add_argument("--data", required=True, help="validation data (any supported format)")
    p.add_argument("--split", help="split of --data")
    p.add_argument("--format", choices=FORMATS)
    p.add_argument(
        "--method",
        choices=CALIBRATION_METHODS,
        default="isotonic",
        help="isotonic: any increasing shape (default; on the demo, held-out ECE 0.139 -> "
        "0.008); temperature: one number, smooth, for few detections (0.139 -> 0.091)",
    )
    p.add_argument("--out", help="model file to write (default: WEIGHTS.calibrated.safetensors)")
    add_tile_args(p, "evaluate")
    add_run_args(p, "score threshold of the ECE reported")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..api import calibrate

    found = calibrate(
        args.weights,
        args.data,
        inference_options(args),
        method=args.method,
        split=args.split,
        format=args.format,
        out=args.out,
    )
    c = found["calibration"]
    shape = (
        f"temperature {c['temperature']:.3f}"
        if c["method"] == "temperature"
        else f"isotonic, {len(c['x'])} steps"
    )
    print(
        f"{shape}: ECE {found['ece_before']:.4f} -> {found['ece_after']:.4f} over "
        f"{found['detections']} detections of {args.data} (measured on the data it was fitted "
        "on: check it on other images with `frcnn eval --calibrated`)"
    )
    print(f"wrote {found['out']}; `frcnn predict --calibrated` reports calibrated scores")
    return 0
