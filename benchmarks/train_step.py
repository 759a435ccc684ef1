"""Training-step time of the demo recipe's model under variants, side by side in one
process (alternating, medians): float32 vs bf16 autocast, NCHW vs NHWC convolution
weights, and the recipe's proposal and RoI counts vs the previous ones.

    .venv/bin/python benchmarks/train_step.py [--steps 6] [VARIANT ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from frcnn.data.synth import synth_image
from frcnn.modeling.builder import build_model

BASE = dict(
    fpn_channels=64,
    representation_size=256,
    norm="bn",
    anchor_sizes=((16,), (32,), (64,), (128,), (256,)),
    rpn_pre_nms_top_n_test=500,
    rpn_post_nms_top_n_test=300,
    min_size=256,
    max_size=256,
)
BEFORE = dict(
    rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500, box_batch_size_per_image=128
)
AFTER = dict(rpn_pre_nms_top_n_train=500, rpn_post_nms_top_n_train=250, box_batch_size_per_image=64)
# name: (model arguments, NHWC weights, bf16 autocast)
VARIANTS = {
    "fp32": ({**BEFORE, "channels_last": False}, False, False),
    "fp32-nhwc": (BEFORE, True, False),
    "bf16": ({**BEFORE, "channels_last": False}, False, True),
    "fewer-rois": ({**AFTER, "channels_last": False}, False, False),
    "recipe": (AFTER, True, True),
}


def batch(rng: np.random.Generator, n: int = 8) -> tuple[list, list]:
    images, targets = [], []
    for _ in range(n):
        image, boxes, labels = synth_image(rng, 256)
        images.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255)
        targets.append({"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)})
    return images, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant (+1 warm-up)")
    parser.add_argument("variants", nargs="*", choices=[[], *VARIANTS], help=", ".join(VARIANTS))
    args = parser.parse_args()
    args.variants = args.variants or list(VARIANTS)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    runs = {}
    for name in args.variants:
        extra, nhwc, bf16 = VARIANTS[name]
        model = build_model("resnet18_fpn", 6, **{**BASE, **extra}).train()
        if not nhwc:  # weights back to NCHW (a channels_last model stores them NHWC)
            model = model.to(memory_format=torch.contiguous_format)
        runs[name] = (model, torch.optim.AdamW(model.parameters(), 1e-3), bf16)
    data = [batch(rng) for _ in range(3)]
    times: dict[str, list[float]] = {name: [] for name in runs}
    for step in range(args.steps + 1):
        for name, (model, opt, bf16) in runs.items():
            images, targets = data[step % len(data)]
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = sum(model(images, targets).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step:
                times[name].append(time.perf_counter() - start)
    first = statistics.median(times[args.variants[0]])
    for name, t in times.items():
        median = statistics.median(t)
        print(f"{name:>12}: {median * 1000:7.0f} ms per step of 8 images  {median / first:.2f}x")


if __name__ == "__main__":
    main()
