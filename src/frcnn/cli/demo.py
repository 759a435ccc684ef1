"""``frcnn demo``: generate data, train for a few minutes, evaluate and predict."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="generate data, train for a few minutes, evaluate and predict")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--minutes", type=float, default=5.0, help="training time budget (default 5)")
    p.add_argument(
        "--n-train", type=int, default=800, help="generated training images (default 800)"
    )
    p.add_argument("--n-val", type=int, default=100, help="generated held-out images (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..api import predict
    from ..demo import run_demo_training

    out = Path(args.out)
    result = run_demo_training(out, args.minutes, args.n_train, args.n_val, seed=args.seed)
    weights = result.best or result.last
    held_out = sorted((out / "data" / "val" / "images").glob("*.png"))[:8]
    predictions = predict(
        weights, [str(p) for p in held_out], conf=0.5, out=out / "predictions", save_images=True
    )
    m = result.metrics
    print(
        f"held-out images: mAP50 {m['AP50']:.3f}  mAP50-95 {m['AP']:.3f}  F1 {m['F1']:.3f} (score >= {m['conf']})"
    )
    print(f"data:        {out / 'data'}")
    print(
        f"run folder:  {result.out} (report.html: the evaluation on one page; results.csv, plots)"
    )
    print(f"weights:     {weights}")
    print(
        f"predictions: {out / 'predictions'} ({sum(len(p.boxes) for p in predictions)} boxes on {len(predictions)} held-out images, drawn in images/)"
    )
    print(f"next: frcnn predict --weights {weights} YOUR_IMAGES --save-images --out runs/predict")
    return 0
