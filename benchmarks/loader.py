"""Data loading throughput next to training throughput, so loading never limits training.

Generates the synthetic dataset, then prints images/s through the DataLoader (default
augmentation) with 0 and 2 workers, and the images/s of training steps of two models at the
same image size.

    .venv/bin/python benchmarks/loader.py [--n 256] [--size 256] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch.utils.data import DataLoader

import frcnn
from frcnn.data import check_dataset, read_dataset, write_synth
from frcnn.data.augment import Augmenter
from frcnn.data.loader import DetectionTorchDataset, collate


def loader_rate(data: DetectionTorchDataset, batch_size: int, workers: int) -> float:
    loader = DataLoader(
        data, batch_size=batch_size, shuffle=True, num_workers=workers, collate_fn=collate
    )
    start = time.perf_counter()
    count = sum(len(images) for images, _ in loader)
    return count / (time.perf_counter() - start)


def train_rate(
    name: str, data: DetectionTorchDataset, batch_size: int, size: int, steps: int, **overrides
) -> float:
    torch.manual_seed(0)
    model = frcnn.build_model(name, data.ds.num_classes, min_size=size, max_size=size, **overrides)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, collate_fn=collate)
    batches = iter(loader)
    images, targets = next(batches)
    model(images, targets)  # warm-up
    start = time.perf_counter()
    seen = 0
    for _ in range(steps):
        losses = model(images, targets)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        seen += len(images)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ds, _ = check_dataset(read_dataset(write_synth(tmp, args.n, args.size)))
        data = DetectionTorchDataset(ds, Augmenter("default"))
        print(
            f"synthetic dataset: {args.n} images of {args.size} px, batch {args.batch_size}, torch threads {torch.get_num_threads()}"
        )
        for workers in (0, 2):
            print(
                f"  loader, {workers} workers, default augmentation: {loader_rate(data, args.batch_size, workers):8.1f} images/s"
            )
        for name, overrides in (
            ("resnet18_fpn", dict(fpn_channels=64, representation_size=256)),
            ("resnet50_fpn", {}),
        ):
            rate = train_rate(name, data, args.batch_size, args.size, args.steps, **overrides)
            print(f"  training {name} {overrides or ''}: {rate:8.1f} images/s")


if __name__ == "__main__":
    main()
