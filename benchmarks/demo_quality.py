"""The demo's quality bar: held-out mAP50 after M minutes of training on this machine.

Runs the demo recipe (the shipped `cpu-fast`, plus any overrides) with a time budget and
prints the learning curve and the final held-out metrics.

    .venv/bin/python benchmarks/demo_quality.py [--minutes 5] [--out runs/demo-bench] [key=value ...]
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import time
from pathlib import Path

from frcnn.demo import run_demo_training


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--out", default="runs/demo-bench")
    parser.add_argument("--n-train", type=int, default=800)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    shutil.rmtree(Path(args.out) / "train", ignore_errors=True)
    start = time.perf_counter()
    result = run_demo_training(args.out, args.minutes, args.n_train, overrides=args.overrides)
    with (result.out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    print(f"{'epoch':>5} {'seconds':>8} {'mAP50':>7} {'mAP':>7} {'F1':>6}")
    elapsed = 0.0
    for r in rows:
        elapsed += float(r["seconds"])
        print(
            f"{int(r['epoch']) + 1:>5} {elapsed:>8.0f} {float(r['mAP50'] or 0):>7.3f} {float(r['mAP'] or 0):>7.3f} {float(r['F1'] or 0):>6.3f}"
        )
    m = result.metrics
    print(
        f"held-out (best checkpoint): mAP50 {m['AP50']:.3f}  mAP {m['AP']:.3f}  F1 {m['F1_at_conf']:.3f}  "
        f"after {args.minutes} min budget ({time.perf_counter() - start:.0f} s wall incl. data and final eval)"
    )
    print(f"quality bar mAP50 >= 0.80: {'PASS' if m['AP50'] >= 0.80 else 'FAIL'}")


if __name__ == "__main__":
    main()
