"""``frcnn data check|convert|synth``: the dataset tools."""

from __future__ import annotations

import argparse
import json

from ..errors import InputError
from .common import add_source_args, print_problems, read_splits

STREAM_CHUNK = 256  # rows of a streamed source checked at a time


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="dataset tools: check, convert, synth")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("check", help="report every problem in a dataset")
    add_source_args(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--fast", action="store_true", help="read image headers only, do not decode")
    p.add_argument("--max-lines", type=int, default=20, help="problems shown per kind (default 20)")
    p.set_defaults(func=check)
    p = data_sub.add_parser("convert", help="convert a dataset to another format")
    add_source_args(p)
    p.add_argument("--to", required=True, choices=["coco", "yolo", "voc", "csv"])
    p.add_argument("out", help="output folder")
    p.set_defaults(func=convert)
    p = data_sub.add_parser(
        "synth",
        help="write the built-in synthetic dataset (COCO; --classify: class-per-subfolder)",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--n", type=int, default=200, help="number of images (default 200)")
    p.add_argument(
        "--size", type=int, help="image side in pixels (default 256; 64 with --classify)"
    )
    p.add_argument(
        "--classify",
        action="store_true",
        help="a classification set for frcnn pretrain-backbone: one shape per image in "
        "OUT/train/<shape>/ and OUT/val/<shape>/ (a fifth of each class)",
    )
    p.add_argument("--grayscale", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--objects",
        type=int,
        nargs=2,
        default=[1, 6],
        metavar=("MIN", "MAX"),
        help="objects per image, drawn uniformly (default 1 6)",
    )
    p.add_argument(
        "--object-size",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="object sides in pixels (default 5%% to 55%% of the image)",
    )
    p.add_argument(
        "--empty-prob",
        type=float,
        default=0.1,
        help="share of images without objects (default 0.1)",
    )
    p.set_defaults(func=synth)


def check(args: argparse.Namespace) -> int:
    from ..data.check import check_chunks, check_dataset
    from ..data.sources import is_hub_source

    results, images = {}, "header" if args.fast else "full"
    if is_hub_source(args.data, args.format):  # streamed a part at a time, nothing kept
        from ..data.hf import HFRows

        rows = HFRows(str(args.data), getattr(args, "split", None))
        chunks = (part for part, _ in rows.chunks(STREAM_CHUNK))
        results[rows.split] = (rows.dataset([]), check_chunks(chunks, images))
    for name, ds in ({} if results else read_splits(args)).items():
        _, report = check_dataset(ds, images=images, exif=not args.no_exif)
        results[name] = (ds, report)
    errors = sum(r.num_errors for _, r in results.values())
    if args.json:
        payload = {
            "source": str(args.data),
            "splits": {
                name: {"format": ds.format, "class_names": ds.class_names, **r.to_json()}
                for name, (ds, r) in results.items()
            },
            "errors": errors,
        }
        print(json.dumps(payload, indent=2))
        return 1 if errors else 0
    for name, (ds, report) in results.items():
        _print_report(name, ds, report, args.max_lines)
    print(f"{errors} errors" if errors else "no errors")
    return 1 if errors else 0


def _print_report(split: str, ds, report, max_lines: int) -> None:
    from ..data.problems import KINDS

    print(f"{ds.source} [{ds.format}, split {split}]: {len(ds.class_names)} classes")
    if len(report.problems):
        print("problems:")
        print_problems(report.problems, max_lines)
    print("summary:")
    for line in report.summary_lines():
        print(f"  {line}")
    per_class = ", ".join(f"{c} {report.instances.get(c, 0)}" for c in ds.class_names)
    print(f"  instances per class: {per_class}")
    sizes = report.sizes
    print(
        f"  box sizes (COCO areas): small {sizes.get('small', 0)}, "
        f"medium {sizes.get('medium', 0)}, large {sizes.get('large', 0)}"
    )
    counts = report.problems.counts()
    kinds = ", ".join(f"{k} {n} ({KINDS[k][0]})" for k, n in sorted(counts.items()))
    print(f"  problems by kind: {kinds or 'none'}")


def convert(args: argparse.Namespace) -> int:
    from ..data.sources import is_hub_source
    from ..data.write import write_dataset, write_streamed

    if is_hub_source(args.data, args.format):  # written as it streams
        from ..data.hf import HFRows

        rows = HFRows(str(args.data), getattr(args, "split", None))
        reports = write_streamed(rows, args.out, args.to)
    else:
        reports = write_dataset(read_splits(args), args.out, args.to)
    for name, report in reports.items():
        print(f"split {name}:")
        for line in report.summary_lines():
            print(f"  {line}")
    print(f"wrote {args.to} dataset to {args.out}")
    return 0


def synth(args: argparse.Namespace) -> int:
    from ..data.synth import write_synth, write_synth_classes

    if args.classify:
        train, val = write_synth_classes(
            args.out, args.n, args.size or 64, args.grayscale, args.seed
        )
        print(
            f"wrote {train} training and {val} validation images in {args.out}/train|val/<class>/"
        )
        return 0
    for option, pair in (("--objects", args.objects), ("--object-size", args.object_size)):
        if pair and not 0 <= pair[0] <= pair[1]:
            raise InputError(f"{option} MIN MAX: need 0 <= MIN <= MAX, got {pair[0]} {pair[1]}")
    size = tuple(args.object_size) if args.object_size else None
    path = write_synth(
        args.out,
        args.n,
        args.size or 256,
        args.grayscale,
        args.seed,
        args.empty_prob,
        args.objects[1],
        size,
        args.objects[0],
    )
    print(f"wrote {args.n} images and {path}")
    return 0
