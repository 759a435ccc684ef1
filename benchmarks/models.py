"""Every registered model: parameters, GFLOPs and CPU inference latency at its default input
size and at 320 px (median of ``--repeats`` runs after a warm-up, random weights, one
image, this machine's threads), and training images/s at 320 px (batches of two).
``--learn MINUTES`` also trains each model from scratch on the built-in synthetic data
(800 training images) with the ``cpu-fast`` recipe (its anchors given one level per
pyramid level of the model) for that wall-time budget and scores 100 held-out images
(mAP50). ``--write`` stores the table that ``frcnn models`` prints.

    .venv/bin/python benchmarks/models.py [--models NAME ...] [--repeats 3] [--learn 3] [--write]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import frcnn
from frcnn.modeling.catalog import MODELS, TABLE_FILE


def default_size(model: torch.nn.Module) -> int:
    """The model's resize target for a square image: its ``min_size`` (the first one)."""
    size = model.config["min_size"]
    return int(size[0] if isinstance(size, (list, tuple)) else size)


@torch.no_grad()
def measure(name: str, repeats: int) -> dict:
    torch.manual_seed(0)
    model = frcnn.build_model(name, 91).eval()
    size = default_size(model)
    row = {
        "params": sum(p.numel() for p in model.parameters()),
        "input_size": size,
    }
    image = [torch.rand(3, size, size)]
    with FlopCounterMode(display=False) as counter:
        model(image)
    row["gflops"] = round(counter.get_total_flops() / 2e9, 2)  # multiply-adds, as papers count
    row["latency_ms"] = latency(model, size, repeats)
    torch.manual_seed(0)  # the same model resizing to 320 px (not up to its min_size)
    at_320 = frcnn.build_model(name, 91, min_size=320, max_size=640).eval()
    row["latency_320_ms"] = latency(at_320, 320, repeats)
    row["train_images_per_s_320"] = train_speed(at_320, repeats)
    return row


@torch.enable_grad()
def train_speed(model: torch.nn.Module, repeats: int) -> float:
    """Median training images per second: batches of two 320 px images with one box each,
    forward, backward and an SGD step."""
    model.train()
    images = [torch.rand(3, 320, 320), torch.rand(3, 320, 320)]
    box = {"boxes": torch.tensor([[40.0, 50.0, 200.0, 220.0]]), "labels": torch.tensor([1])}
    targets = [box, box]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)

    def step() -> None:
        opt.zero_grad()
        sum(model(images, targets).values()).backward()
        opt.step()

    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    model.eval()
    return round(len(images) / statistics.median(times), 2)


@torch.no_grad()
def latency(model: torch.nn.Module, side: int, repeats: int) -> float:
    """Median milliseconds of one ``side`` x ``side`` image, after a warm-up run."""
    images = [torch.rand(3, side, side)]
    model(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(images)
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 1)


def learn(name: str, minutes: float, folder: Path) -> float:
    """Held-out mAP50 of ``name`` trained from scratch for ``minutes`` with ``cpu-fast``."""
    from frcnn.config import load_config
    from frcnn.data.synth import write_synth
    from frcnn.engine.trainer import train

    if not (folder / "val" / "annotations.json").exists():
        write_synth(folder / "train", 800, 256, seed=0)
        write_synth(folder / "val", 100, 256, seed=1)
    levels = len(frcnn.build_model(name, 2, fpn_channels=8, representation_size=8).backbone.levels)
    sizes = [[16], [32], [64], [128], [256]] if levels == 5 else [[16, 32, 64, 128, 256]] * levels
    cfg = load_config(
        "cpu-fast",
        **{
            "model.name": name,
            "model.args.anchor_sizes": sizes,
            "model.args.aspect_ratios": [[0.5, 1.0, 2.0]] * levels,
            "data.train": str(folder / "train"),
            "data.val": str(folder / "val"),
            "run.out": str(folder / "runs" / name),
            "schedule.time_budget": minutes,
        },
    )
    return round(float(train(cfg).metrics["AP50"]), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="default: every registered model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"store the table in {TABLE_FILE}")
    parser.add_argument(
        "--learn", type=float, default=0, help="minutes of cpu-fast training per model (0: skip)"
    )
    parser.add_argument("--learn-data", default="runs/bench-models", help="synthetic data folder")
    parser.add_argument(
        "--learn-only", action="store_true", help="measure (and store) only the learning column"
    )
    args = parser.parse_args()
    names = args.models or list(MODELS)
    table = json.loads(TABLE_FILE.read_text()) if TABLE_FILE.exists() else {}
    table.setdefault("models", {})
    table["machine"] = f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}"
    if not args.learn_only:
        latency(frcnn.build_model(names[0], 91).eval(), 320, 2)  # threads, allocator warm up
    print(
        f"{'model':<28}{'params':>10}{'GFLOPs':>9}{'size':>6}{'ms':>9}{'ms@320':>9}"
        f"{'train/s@320':>12}{'mAP50':>7}"
    )
    for name in names:
        row = table["models"].get(name, {}) if args.learn_only else measure(name, args.repeats)
        if args.learn:
            logging.getLogger("frcnn").setLevel(logging.WARNING)
            row["learn_map50"] = learn(name, args.learn, Path(args.learn_data))
            row["learn_minutes"] = args.learn
            table["learn"] = f"{args.learn:g} min of cpu-fast on 800 synthetic images"
        table["models"][name] = row
        print(
            f"{name:<28}{row.get('params', 0) / 1e6:>9.1f}M{row.get('gflops', 0):>9.1f}"
            f"{row.get('input_size', 0):>6}{row.get('latency_ms', 0):>9.0f}"
            f"{row.get('latency_320_ms', 0):>9.0f}{row.get('train_images_per_s_320', 0):>12.2f}"
            f"{row.get('learn_map50', float('nan')):>7.3f}"
        )
    if args.write:
        TABLE_FILE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        print(f"wrote {TABLE_FILE}")


if __name__ == "__main__":
    main()
