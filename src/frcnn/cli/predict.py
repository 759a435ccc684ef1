"""``frcnn predict``: detections for image files, folders and globs."""

from __future__ import annotations

import argparse

from ..defaults import BATCH_SIZE, CONF
from .common import add_tile_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="detect objects in images")
    p.add_argument("--weights", required=True, help="frcnn model file")
    p.add_argument("sources", nargs="+", help="image files, folders or globs")
    p.add_argument("--out", help="output folder")
    p.add_argument("--conf", type=float, default=CONF, help=f"score threshold (default {CONF})")
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
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..api import predict

    results = predict(
        args.weights,
        args.sources,
        args.conf,
        args.out,
        args.save_images,
        args.format,
        args.tile,
        args.overlap,
        args.batch_size,
        args.device,
        args.max_det,
        draw={
            "line_width": args.line_width,
            "show_labels": not args.hide_labels,
            "show_scores": not args.hide_scores,
        },
    )
    for p in results:
        print(f"{p.path}: {len(p.boxes)} detections")
    if args.out:
        print(f"wrote {args.format} predictions to {args.out}")
    return 0
