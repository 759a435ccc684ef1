"""``frcnn benchmark``: ms per image, images/s, peak memory and accuracy of each format."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..defaults import BENCHMARK_DEFAULT_FORMATS, BENCHMARK_FORMATS, BENCHMARK_IMAGES
from ..errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="speed, memory and accuracy of a model in each format",
        description="Times the model in each format on the same images, interleaved (median "
        "and p90 ms per image, images/s), measures each format's peak memory in a fresh "
        "process and, with --data, its mAP50 and mAP. A missing export is made (and "
        "checked) first.",
    )
    p.add_argument("--weights", required=True, help="frcnn model file (.safetensors)")
    p.add_argument("--data", help="also score each format on this data")
    formats = ",".join(BENCHMARK_DEFAULT_FORMATS)
    p.add_argument(
        "--formats",
        default=formats,
        help=f"comma-separated, from {', '.join(BENCHMARK_FORMATS)} (default {formats}); "
        "-bf16/-fp16/-int8 are reduced-precision versions, torchscript a fixed-size graph",
    )
    p.add_argument(
        "--img-size",
        type=int,
        help="side of the timed (square) images (default: the model's input size)",
    )
    p.add_argument(
        "--images",
        type=int,
        default=BENCHMARK_IMAGES,
        help=f"timed images per format (default {BENCHMARK_IMAGES})",
    )
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..deploy.benchmark import format_file, run_benchmark, table

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(BENCHMARK_FORMATS))
    if unknown or not formats:
        raise InputError(
            f"--formats: unknown {unknown}; choose from {', '.join(BENCHMARK_FORMATS)}"
        )
    weights = Path(args.weights)
    files = {fmt: format_file(weights, fmt, args.data) for fmt in formats}
    results = run_benchmark(
        files, args.img_size, args.images, args.threads, args.data, not args.no_memory
    )
    print(table(results))
    return 0
