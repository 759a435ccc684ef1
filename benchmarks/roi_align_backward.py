"""RoIAlign's backward pass on the CPU: torchvision's kernel against frcnn's sparse one
(frcnn/modeling/roi/align_grad.py), side by side in one process, alternating, medians.

1. the pooler alone: forward + backward of 8 images x 128 RoIs over P2-P5 (64 channels,
   256 px input), as the cpu-fast recipe pools them;
2. a whole cpu-fast training step (ResNet-18 FPN, batch 8, 256 px).

    .venv/bin/python benchmarks/roi_align_backward.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torchvision.ops import roi_align

import frcnn
from frcnn.data.synth import synth_image
from frcnn.modeling.roi import pooler as pooler_module
from frcnn.modeling.roi.align_grad import fast_roi_align
from frcnn.modeling.roi.pooler import MultiScaleRoIAlign

KERNELS = {"torchvision": roi_align, "frcnn": fast_roi_align}


def pooler_case():
    torch.manual_seed(0)
    feats = [
        torch.randn(8, 64, 256 // s, 256 // s).contiguous(memory_format=torch.channels_last)
        for s in (4, 8, 16, 32)
    ]
    boxes = []
    for _ in range(8):
        xy = torch.rand(128, 2) * 200
        wh = torch.rand(128, 2) * 120 + 8
        boxes.append(torch.cat([xy, (xy + wh).clamp(max=256)], 1))
    pooler = MultiScaleRoIAlign((4, 8, 16, 32), 7, 2)
    upstream = torch.randn(8 * 128, 64, 7, 7)

    def run() -> None:
        inputs = [f.clone().requires_grad_(True) for f in feats]
        (pooler(inputs, boxes) * upstream).sum().backward()

    return run


def training_case():
    torch.manual_seed(0)
    model = frcnn.build_model(
        "resnet18_fpn",
        6,
        fpn_channels=64,
        representation_size=256,
        norm="bn",
        anchor_sizes=[[16], [32], [64], [128], [256]],
        rpn_pre_nms_top_n_train=1000,
        rpn_post_nms_top_n_train=500,
        box_batch_size_per_image=128,
        min_size=256,
        max_size=256,
    ).train()
    rng = np.random.default_rng(0)
    images, targets = [], []
    for _ in range(8):
        image, b, labels = synth_image(rng, 256, 0.0)
        images.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255)
        targets.append({"boxes": torch.from_numpy(b), "labels": torch.from_numpy(labels)})
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)

    def run() -> None:
        opt.zero_grad()
        sum(model(images, targets).values()).backward()
        opt.step()

    return run


def compare(name: str, run, repeats: int) -> None:
    times = {k: [] for k in KERNELS}
    for kernel in KERNELS:  # warm-up both
        pooler_module.fast_roi_align = KERNELS[kernel]
        run()
    for _ in range(repeats):
        for kernel, fn in KERNELS.items():
            pooler_module.fast_roi_align = fn
            start = time.perf_counter()
            run()
            times[kernel].append(time.perf_counter() - start)
    pooler_module.fast_roi_align = fast_roi_align
    tv, ours = (statistics.median(times[k]) * 1000 for k in KERNELS)
    print(f"{name:<34}{tv:>12.1f}{ours:>10.1f}{ours / tv:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"{torch.get_num_threads()} threads; median ms")
    print(f"{'':<34}{'torchvision':>12}{'frcnn':>10}{'ratio':>8}")
    compare("pooler forward + backward", pooler_case(), args.repeats)
    compare("cpu-fast training step (batch 8)", training_case(), args.repeats)


if __name__ == "__main__":
    main()
