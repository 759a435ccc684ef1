"""Every registered model: parameters, GFLOPs and CPU inference latency at its default input
size and at 320 px (median of ``--repeats`` runs after a warm-up, random weights, one
image, this machine's threads), and training images/s at 320 px (batches of two).
``--write`` stores the table that ``frcnn models`` prints.

    .venv/bin/python benchmarks/models.py [--models NAME ...] [--repeats 3] [--write]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="default: every registered model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"store the table in {TABLE_FILE}")
    args = parser.parse_args()
    names = args.models or list(MODELS)
    table = json.loads(TABLE_FILE.read_text()) if TABLE_FILE.exists() else {}
    table.setdefault("models", {})
    table["machine"] = f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}"
    latency(frcnn.build_model(names[0], 91).eval(), 320, 2)  # threads and allocator warm up
    print(
        f"{'model':<28}{'params':>10}{'GFLOPs':>9}{'size':>6}{'ms':>9}{'ms@320':>9}"
        f"{'train/s@320':>12}"
    )
    for name in names:
        row = measure(name, args.repeats)
        table["models"][name] = row
        print(
            f"{name:<28}{row['params'] / 1e6:>9.1f}M{row['gflops']:>9.1f}{row['input_size']:>6}"
            f"{row['latency_ms']:>9.0f}{row['latency_320_ms']:>9.0f}"
            f"{row['train_images_per_s_320']:>12.2f}"
        )
    if args.write:
        TABLE_FILE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        print(f"wrote {TABLE_FILE}")


if __name__ == "__main__":
    main()
