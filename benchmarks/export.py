"""PyTorch against its ONNX export (ONNX Runtime, CPU) on the same images, one process,
alternating: median and p90 ms per image, and the ratio (< 1: the export is faster). With
--data, mAP50 and mAP of each on that data (the export must not change them).

    .venv/bin/python benchmarks/export.py --weights runs/demo/train/weights/best.safetensors \
        [--onnx runs/demo/model.onnx] [--data runs/demo/data/val] [--images 20] [--size 256]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import frcnn
from frcnn.deploy.export import export_model
from frcnn.deploy.exported import OnnxDetector


def timings(runners: dict, images: list[torch.Tensor]) -> dict[str, list[float]]:
    """Seconds per image of each runner, the runners interleaved image by image."""
    times: dict[str, list[float]] = {k: [] for k in runners}
    for run in runners.values():  # warm-up
        run([images[0]])
    for image in images:
        for name, run in runners.items():
            start = time.perf_counter()
            run([image])
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--onnx", help="an export of --weights (default: export it now)")
    parser.add_argument("--data", help="score both on this data too")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--size", type=int, default=256, help="side of the timed images")
    args = parser.parse_args()
    onnx = Path(args.onnx) if args.onnx else export_model(args.weights, dynamic=True)[0]
    model = frcnn.load_model(args.weights).eval()
    runners = {"pytorch": torch.no_grad()(model), "onnx": OnnxDetector(onnx)}
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, args.size, args.size, generator=g) for _ in range(args.images)]
    times = timings(runners, images)
    print(f"{args.images} images of {args.size} px, {torch.get_num_threads()} threads")
    print(f"{'format':<10}{'median ms':>10}{'p90 ms':>8}{'images/s':>10}")
    for name, t in times.items():
        ms = np.array(t) * 1000
        print(
            f"{name:<10}{np.median(ms):>10.1f}{np.percentile(ms, 90):>8.1f}{1000 / np.median(ms):>10.1f}"
        )
    ratio = statistics.median(times["onnx"]) / statistics.median(times["pytorch"])
    print(f"onnx / pytorch: {ratio:.2f}")
    if args.data:
        for name, path in (("pytorch", args.weights), ("onnx", onnx)):
            r = frcnn.evaluate(path, args.data)
            print(f"{name}: mAP50 {r.coco['AP50']:.4f} mAP {r.coco['AP']:.4f}")


if __name__ == "__main__":
    main()
