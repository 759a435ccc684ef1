"""How fast can float32 inference be on this CPU? The detector's arithmetic (GFLOP per image,
counted by torch's FLOP counter) over the machine's float32 and bfloat16 matrix-multiply
rates (GFLOP/s, 2048 x 2048 products): a floor that no exact float32 optimisation goes under.

    .venv/bin/python benchmarks/compute_floor.py [--size 400] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from frcnn.deploy.optimize import optimize
from frcnn.io.convert import model_from_torchvision


def model_gflop(size: int) -> float:
    """GFLOP of one ``size`` x ``4/3 size`` image through ResNet-50 FPN (91 classes)."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    torch.manual_seed(0)
    kw = dict(min_size=size, max_size=size * 1333 // 800)
    tv = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, **kw)
    model = optimize(model_from_torchvision(tv.state_dict(), **kw).eval())
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model([torch.rand(3, size, size * 4 // 3)])
    return counter.get_total_flops() / 1e9


def matmul_rate(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of an ``n`` x ``n`` matrix product in ``dtype`` (median of ``repeats``)."""
    a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gflop = model_gflop(args.size)
    fp32, bf16 = matmul_rate(torch.float32), matmul_rate(torch.bfloat16)
    print(f"ResNet-50 FPN at {args.size} px: {gflop:.1f} GFLOP per image")
    print(f"float32 matmul {fp32:.0f} GFLOP/s -> at least {gflop / fp32:.3f} s per image")
    print(f"bfloat16 matmul {bf16:.0f} GFLOP/s -> at least {gflop / bf16:.3f} s per image")


if __name__ == "__main__":
    main()
