"""``frcnn anchors``: anchors fitted to a dataset with KMeans, as a config snippet."""

from __future__ import annotations

import argparse

from .common import add_source_args, add_tile_args, read_splits


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "anchors", help="fit anchors to a dataset with KMeans and write a config snippet"
    )
    add_source_args(p)
    p.add_argument("--k", type=int, default=9, help="KMeans clusters (default 9)")
    p.add_argument(
        "--min-size", type=int, default=800, help="training resize short side (default 800)"
    )
    p.add_argument(
        "--max-size", type=int, default=1333, help="training resize long-side cap (default 1333)"
    )
    p.add_argument("--fixed-size", type=int, help="square training size instead of min/max size")
    p.add_argument("--seed", type=int, default=0)
    add_tile_args(p, "fit to", max_det=False)
    p.add_argument(
        "--tile-min-visibility",
        type=float,
        default=0.5,
        help="with --tile: keep a box cut by a tile edge when this share of it is inside "
        "(default 0.5, as train)",
    )
    p.add_argument(
        "--out",
        help="write the snippet to this YAML file (for train --anchors FILE or --config FILE); "
        "without it the snippet is only printed",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import yaml

    from ..data.anchor_fit import fit_anchors
    from ..data.check import check_dataset
    from ..data.tiles import tile_records
    from ..io.atomic import atomic_write_text

    ds = next(iter(read_splits(args).values()))
    ds, _ = check_dataset(ds, images="header", exif=not args.no_exif)
    where = ""
    if args.tile:
        ds = tile_records(ds, args.tile, args.overlap, args.tile_min_visibility)
        where = f"in {len(ds.images)} tiles of {args.tile} px, "
    fixed = (args.fixed_size, args.fixed_size) if args.fixed_size else None
    fit = fit_anchors(ds, args.k, args.min_size, args.max_size, fixed, seed=args.seed)
    print(
        f"{fit.num_boxes} boxes {where}after resizing (min_size {args.min_size}, max_size "
        f"{args.max_size}{', fixed ' + str(args.fixed_size) if fixed else ''}); "
        f"{len(fit.clusters)} clusters (w x h):"
    )
    for w, h in fit.clusters:
        print(f"  {w:7.1f} x {h:7.1f}   size {np.sqrt(w * h):7.1f}   h/w {h / w:5.2f}")
    print("mean best-anchor IoU of the boxes:")
    print(f"  default anchors         {fit.iou_default:.3f}")
    print(f"  the {len(fit.clusters)} clusters          {fit.iou_clusters:.3f}")
    print(f"  fitted anchors (snippet) {fit.iou_fitted:.3f}")
    text = yaml.safe_dump(fit.snippet(), default_flow_style=None, sort_keys=False)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out} (use it with: frcnn train --anchors {args.out} ...):")
    else:
        print("snippet (save it with --out FILE, then frcnn train --anchors FILE ...):")
    print(text.rstrip())
    return 0
