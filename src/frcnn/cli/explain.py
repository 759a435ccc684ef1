"""``frcnn explain``: see every stage of the detector on your own image."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="draw every stage of the detector on one image (one HTML page)",
        description="Runs the model's stages one by one on IMAGE and draws each: the "
        "resized input, the feature maps, the anchors, RPN objectness, proposals before and "
        "after NMS, class scores per RoI and the detections before and after the score "
        "threshold and NMS; with --labels also which anchors are positive, negative or "
        "ignored and the RoIs the box head would train on.",
    )
    p.add_argument("image", help="an image file")
    p.add_argument("--weights", required=True, help="frcnn model file (.safetensors)")
    p.add_argument(
        "--labels", help="a dataset (any format) holding IMAGE's annotations, by file name"
    )
    p.add_argument("--out", default="runs/explain", help="folder to write (default runs/explain)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..explainer.run import explain

    page, stages, _ = explain(args.weights, args.image, args.labels, args.out)
    for stage in stages:
        counts = ", ".join(f"{k} {v}" for k, v in stage.counts.items())
        print(f"  {stage.title}: {', '.join(stage.files)} ({counts})")
    print(f"wrote {page}")
    return 0
