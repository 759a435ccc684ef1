"""Aerial-like quality bar: dense small objects on large images, trained in tiles.

Per seed: two generated 2048 px training images with 250-300 objects of 12-40 px each
(``frcnn data synth --n 2 --size 2048 --objects 250 300 --object-size 12 40 --empty-prob 0``),
trained with ``frcnn train --tile 400`` and a time budget (the trainer holds out blocks of
them for selection), then scored on a third generated image of the same kind that training
never saw (``frcnn eval --tile 400 --max-det 400``). Each variant is a list of overrides;
variants run alternately per seed so a busy machine slows them alike.

    .venv/bin/python benchmarks/aerial_quality.py [--minutes 3] [--seeds 3] \
        [--variant NAME[@SRC]=key=value,key=value ...] [--out runs/aerial-bench]

Without ``--variant`` it runs the shipped ``cpu-fast`` recipe (``today``). ``@SRC`` trains a
variant with another checkout's ``src`` folder (``git worktree add /tmp/old COMMIT``, then
``old@/tmp/old/src=``), so an earlier commit runs alongside.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

FRCNN = [sys.executable, "-m", "frcnn", "-q"]
SYNTH = ["--size", "2048", "--objects", "250", "300", "--object-size", "12", "40"]


def make_data(out: Path, seed: int) -> tuple[Path, Path]:
    train, test = out / f"data{seed}" / "train", out / f"data{seed}" / "test"
    for folder, n, s in ((train, 2, seed), (test, 1, 1000 + seed)):
        if not (folder / "annotations.json").exists():
            cmd = [*FRCNN, "data", "synth", str(folder), "--n", str(n), "--seed", str(s)]
            subprocess.run([*cmd, *SYNTH, "--empty-prob", "0"], check=True)
    return train, test


def one_run(
    out: Path, data: tuple[Path, Path], minutes: float, overrides: list[str], src: str | None
) -> dict:
    """Train and score one variant; ``src`` is another checkout's ``src`` folder to train
    with (an earlier commit), else this one's."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": src} if src else None
    train, test = data
    start = time.perf_counter()
    out.mkdir(parents=True)
    with (out / "train.log").open("w") as log:
        subprocess.run(
            [*FRCNN, "train", "--data", str(train), "--config", "cpu-fast", "--tile", "400"]
            + ["--time-budget", str(minutes), "--out", str(out / "train"), *overrides],
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    seconds = time.perf_counter() - start
    weights = out / "train" / "weights" / "best.safetensors"
    subprocess.run(
        [*FRCNN, "eval", "--weights", str(weights), "--data", str(test), "--tile", "400"]
        + ["--max-det", "400", "--out", str(out / "eval")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    rows = (out / "train" / "results.csv").read_text().splitlines()
    return {"AP50": metrics["AP50"], "AP": metrics["AP"], "epochs": len(rows) - 1, "s": seconds}


def parse_variants(specs: list[str]) -> dict[str, tuple[list[str], str | None]]:
    """``NAME[@SRC]=key=value,...`` -> {NAME: (overrides, SRC)}."""
    variants = {}
    for spec in specs or ["today="]:
        head, _, overrides = spec.partition("=")
        name, _, src = head.partition("@")
        variants[name] = ([o for o in overrides.split(",") if o], src or None)
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--variant", action="append", help="NAME=key=value,key=value")
    parser.add_argument("--out", default="runs/aerial-bench")
    args = parser.parse_args()
    variants = parse_variants(args.variant)
    scores: dict[str, list[float]] = {name: [] for name in variants}
    for seed in range(args.seeds):
        data = make_data(Path(args.out), seed)
        for name, (overrides, src) in variants.items():
            folder = Path(args.out) / f"{name}-seed{seed}"
            r = one_run(folder, data, args.minutes, [f"run.seed={seed}", *overrides], src)
            scores[name].append(r["AP50"])
            print(
                f"seed {seed} {name}: test mAP50 {r['AP50']:.3f} mAP {r['AP']:.3f} "
                f"({r['epochs']} epochs, {r['s']:.0f} s)",
                flush=True,
            )
    for name, values in scores.items():
        print(
            f"{name}: mAP50 per seed {[round(v, 3) for v in values]}, median "
            f"{statistics.median(values):.3f} ({args.minutes} min, {variants[name]})"
        )


if __name__ == "__main__":
    main()
