"""``frcnn predict``: detections for image files, folders and globs."""

from __future__ import annotations

import argparse

from ..errors import InputError
from .common import (
    add_merge_args,
    add_precision_arg,
    add_run_args,
    add_tile_args,
    inference_options,
    split_weights,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="detect objects in images")
    p.add_argument(
        "--weights", required=True, nargs="+", help="frcnn model file (several: an ensemble)"
    )
    p.add_argument(
        "sources", nargs="*", help="image files, folders or globs; video files; camera indices"
    )
    p.add_argument("--out", help="output folder")
    add_run_args(p)
    p.add_argument(
        "--save-images", action="store_true", help="also write the images with boxes drawn"
    )
    p.add_argument("--format", choices=["json", "coco", "csv"], default="json")
    p.add_argument(
        "--line-width",
        type=int,
        help="box line width of drawn images (default: scaled to the image)",
    )
    p.add_argument("--hide-labels", action="store_true", help="drawn images without class names")
    p.add_argument("--hide-scores", action="store_true", help="drawn images without scores")
    add_tile_args(p)
    add_merge_args(p)
    add_precision_arg(p)
    p.add_argument(
        "--calibrated",
        action="store_true",
        help="report scores mapped by the model file's calibration (frcnn calibrate); "
        "--conf then applies to them",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..api import predict

    weights, sources = split_weights(args.weights, args.sources)
    if not sources:
        raise InputError("give the images to predict on: frcnn predict --weights W SOURCE ...")
    results = predict(
        weights,
        sources,
        inference_options(args),
        out=args.out,
        save_images=args.save_images,
        format=args.format,
        draw={
            "line_width": args.line_width,
            "show_labels": not args.hide_labels,
            "show_scores": not args.hide_scores,
        },
    )
    report(results, args.out, args.format)
    return 0


def report(results: list, out: str | None, fmt: str) -> None:
    """What ``frcnn predict`` prints: a line per image, one per video (its frames summed)."""
    from ..words import count

    videos: dict[str, list[int]] = {}
    for p in results:
        name = str(p.path)
        if "#frame" in name:
            videos.setdefault(name.rsplit("#frame", 1)[0], []).append(len(p.boxes))
        else:
            print(f"{name}: {count(len(p.boxes), 'detection')}")
    for name, counts in videos.items():
        print(f"{name}: {count(len(counts), 'frame')}, {count(sum(counts), 'detection')}")
    if out:
        extra = " and annotated videos with per-frame detections" if videos else ""
        print(f"wrote {fmt} predictions{extra} to {out}")
