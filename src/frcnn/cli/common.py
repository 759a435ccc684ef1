"""What several commands share: dataset arguments, reading splits, printing problems."""

from __future__ import annotations

import argparse
from collections import Counter

FORMATS = ["coco", "yolo", "voc", "csv", "hf"]


def add_source_args(p: argparse.ArgumentParser) -> None:
    """The positional dataset and the options that say how to read it."""
    p.add_argument(
        "data",
        help="dataset: COCO JSON/folder, YOLO folder/data.yaml, VOC folder, CSV, hf:NAME[:SPLIT]",
    )
    p.add_argument("--format", choices=FORMATS, help="force the format")
    p.add_argument("--split", help="only this split (default: all)")
    p.add_argument("--images", help="folder the image file names are relative to (COCO, CSV)")
    p.add_argument("--no-exif", action="store_true", help="ignore EXIF orientation")


def add_tile_args(p: argparse.ArgumentParser, what: str = "predict", max_det: bool = True) -> None:
    """``--tile``, ``--overlap`` and (``max_det``) ``--max-det``, the same for every command
    that works on tiles."""
    from ..defaults import TILE_OVERLAP

    p.add_argument(
        "--tile",
        type=int,
        help=f"{what} large images in overlapping tiles of this size (the size of "
        "train --tile SIZE)",
    )
    p.add_argument(
        "--overlap",
        type=float,
        default=TILE_OVERLAP,
        help=f"tile overlap fraction (default {TILE_OVERLAP})",
    )
    if not max_det:
        return
    p.add_argument(
        "--max-det",
        type=int,
        help="most detections kept per image (per tile when tiled); default: the model's "
        "(100). Raise it for scenes with more objects",
    )


def read_splits(args: argparse.Namespace) -> dict:
    """Every split of ``args.data`` (or only ``--split``), read but not yet checked."""
    from ..data.sources import list_splits, read_dataset

    splits = [args.split] if getattr(args, "split", None) else list_splits(args.data, args.format)
    return {
        s: read_dataset(args.data, args.format, s, images=args.images, exif=not args.no_exif)
        for s in splits
    }


def print_problems(problems, limit: int) -> None:
    """At most ``limit`` problems of each kind, then how many more."""
    shown: Counter = Counter()
    for p in problems:
        shown[p.kind] += 1
        if shown[p.kind] <= limit:
            print(f"  {p}")
    for kind, n in sorted(shown.items()):
        if n > limit:
            print(f"  ... and {n - limit} more [{kind}]")
