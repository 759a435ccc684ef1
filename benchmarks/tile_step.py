"""Where a training step's time goes, 256 px shapes against 400 px aerial-like tiles.

Builds the `cpu-fast` recipe's model once per variant and times training steps of 8 images
side by side in one process (alternating, medians), split into the transform, the backbone
and pyramid, the RPN, the RoI heads and the backward pass with the optimiser step. Images:
``shapes`` are the demo's 256 px images (1-6 objects of 5-55% of the side); ``tiles`` are
400 px crops of the aerial-like set (8-14 objects of 12-40 px, as a 400 px tile of
``frcnn data synth --size 2048 --objects 250 300 --object-size 12 40`` holds). Each row
prints ms per step, images/s and megapixels/s (input pixels the step trains on), so tiles
and shapes compare per pixel.

    .venv/bin/python benchmarks/tile_step.py [--steps 6] [VARIANT ...]

A variant is ``NAME=IMAGES:SIZE[,key=value...]`` with model arguments after the size, e.g.
``tiles-b4=tiles:400,batch=4`` or ``tiles-300=tiles:400,rpn_post_nms_top_n_train=300``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
import torch

from frcnn.config import load_config
from frcnn.data.synth import synth_image
from frcnn.modeling.builder import build_model

IMAGES = {
    "shapes": {},
    "tiles": {"min_objects": 8, "max_objects": 14, "object_size": (12.0, 40.0), "empty_prob": 0},
}
DEFAULT = ["shapes=shapes:256", "tiles-256=tiles:256", "tiles-400=tiles:400"]
STAGES = ("transform", "backbone", "rpn", "roi_heads")


def recipe_args() -> dict:
    """The shipped cpu-fast recipe's model arguments."""
    cfg = load_config("cpu-fast")
    return {
        k: tuple(map(tuple, v)) if k == "anchor_sizes" else v for k, v in cfg.model.args.items()
    }


def parse(spec: str) -> tuple[str, str, int, int, dict]:
    """``NAME=IMAGES:SIZE[,key=value...]`` -> (name, images, size, batch, model args)."""
    name, _, rest = spec.partition("=")
    head, *pairs = rest.split(",")
    kind, _, size = head.partition(":")
    args = {k: v for k, _, v in (p.partition("=") for p in pairs)}
    batch = int(args.pop("batch", 8))
    return name, kind, int(size), batch, {k: int(v) for k, v in args.items()}


def make_batches(kind: str, size: int, batch: int, n: int = 3) -> list[tuple[list, list]]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        images, targets = [], []
        for _ in range(batch):
            image, boxes, labels = synth_image(rng, size, **IMAGES[kind])
            images.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255)
            targets.append({"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)})
        out.append((images, targets))
    return out


def timed(model: torch.nn.Module, clock: dict) -> None:
    """Forward hooks on the detector's stages that add each stage's seconds to ``clock``."""
    for stage in STAGES:
        module = getattr(model, stage)
        module.register_forward_pre_hook(
            lambda m, a, s=stage: clock.__setitem__(s, -time.perf_counter())
        )
        module.register_forward_hook(
            lambda m, a, o, s=stage: clock.__setitem__(s, clock[s] + time.perf_counter())
        )


def step(run: dict, images: list, targets: list) -> dict[str, float]:
    clock: dict[str, float] = run["clock"]
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = sum(run["model"](images, targets).values())
    forward = time.perf_counter()
    run["opt"].zero_grad()
    loss.backward()
    run["opt"].step()
    end = time.perf_counter()
    return {**{s: clock[s] for s in STAGES}, "backward": end - forward, "total": end - start}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant (+1 warm-up)")
    parser.add_argument("variants", nargs="*", help="NAME=IMAGES:SIZE[,key=value...]")
    args = parser.parse_args()
    torch.manual_seed(0)
    base = recipe_args()
    runs = {}
    for spec in args.variants or DEFAULT:
        name, kind, size, batch, extra = parse(spec)
        model = build_model(
            "resnet18_fpn", 6, **{**base, "min_size": size, "max_size": size, **extra}
        )
        run = {"model": model.train(), "clock": {}, "batches": make_batches(kind, size, batch)}
        run["opt"] = torch.optim.AdamW(model.parameters(), 1e-3)
        run["pixels"] = batch * size * size
        timed(model, run["clock"])
        runs[name] = run
    times: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in runs}
    for i in range(args.steps + 1):
        for name, run in runs.items():
            images, targets = run["batches"][i % len(run["batches"])]
            for key, seconds in step(run, images, targets).items():
                if i:
                    times[name][key].append(seconds)
    head = "".join(f"{s:>10}" for s in (*STAGES, "backward"))
    print(f"{'variant':>14} {'ms/step':>8}{head} {'images/s':>9} {'Mpx/s':>6}")
    for name, t in times.items():
        med = {k: statistics.median(v) for k, v in t.items()}
        n = len(runs[name]["batches"][0][0])
        cells = "".join(f"{med[s] * 1000:>10.0f}" for s in (*STAGES, "backward"))
        mpx = runs[name]["pixels"] / med["total"] / 1e6
        print(f"{name:>14} {med['total'] * 1000:>8.0f}{cells} {n / med['total']:>9.1f} {mpx:>6.2f}")


if __name__ == "__main__":
    main()
