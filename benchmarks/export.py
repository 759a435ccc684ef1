"""Every format of a model on the same images, one process, interleaved image by image:
median and p90 ms per image, images/s and the ratio to PyTorch (< 1: faster); with --data,
mAP50 and mAP of each (the float32 exports must not change them; the reduced-precision
ones show what they cost). Missing or stale exports are made beside the weights (ONNX of
any size; int8 calibrated on --data). The measuring is ``frcnn benchmark``'s
(frcnn/deploy/benchmark.py), without its peak-memory processes. A TorchScript file is
traced at the model's input size, so with it every format is timed at that size.

    .venv/bin/python benchmarks/export.py --weights runs/demo/train/weights/best.safetensors \
        --data runs/demo/data/val [--formats pytorch,onnx] [--images 30] [--size 256]
"""

from __future__ import annotations

import argparse

import torch

from frcnn.defaults import BENCHMARK_FORMATS
from frcnn.deploy.benchmark import format_file, run_benchmark, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", help="score every format on this data (and calibrate int8)")
    parser.add_argument("--formats", default=",".join(BENCHMARK_FORMATS))
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--size", type=int, default=256, help="side of the timed images")
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    if args.data is None and "onnx-int8" in formats:
        formats.remove("onnx-int8")  # nothing to calibrate on
    files = {fmt: format_file(args.weights, fmt, args.data) for fmt in formats}
    results = run_benchmark(files, args.size, args.images, data=args.data, memory=False)
    print(f"{args.images} images, {torch.get_num_threads()} threads")
    print(table(results))


if __name__ == "__main__":
    main()
