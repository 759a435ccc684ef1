"""PyTorch against its ONNX export (ONNX Runtime, CPU) on the same images, one process,
interleaved image by image: median and p90 ms per image, images/s and the ratio (< 1: the
export is faster); with --data, mAP50 and mAP of each (the export must not change them).
The measuring is ``frcnn benchmark``'s (frcnn/deploy/benchmark.py), without its
peak-memory processes.

    .venv/bin/python benchmarks/export.py --weights runs/demo/train/weights/best.safetensors \
        [--onnx runs/demo/model.onnx] [--data runs/demo/data/val] [--images 20] [--size 256]
"""

from __future__ import annotations

import argparse

import torch

from frcnn.deploy.benchmark import run_benchmark, table
from frcnn.deploy.export import export_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--onnx", help="an export of --weights (default: export it now)")
    parser.add_argument("--data", help="score both on this data too")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--size", type=int, default=256, help="side of the timed images")
    args = parser.parse_args()
    onnx = args.onnx or export_model(args.weights, dynamic=True)[0]
    files = {"pytorch": args.weights, "onnx": onnx}
    results = run_benchmark(files, args.size, args.images, data=args.data, memory=False)
    print(f"{args.images} images of {args.size} px, {torch.get_num_threads()} threads")
    print(table(results))


if __name__ == "__main__":
    main()
