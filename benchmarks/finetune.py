"""Does starting from trained weights beat random weights in the same minutes? A detector is
trained on one generated dataset (the "pretrained" file, as COCO weights would be), then,
for each seed, fine-tuned from it on a small dataset of other classes and scenes beside the
same model trained from random weights for the same wall time; both are scored on the
small set's held-out images (mAP50).

    .venv/bin/python benchmarks/finetune.py [--pretrain-minutes 4] [--minutes 2] \\
        [--seeds 0 1 2] [--train-images 100] [--out runs/bench-finetune]

The small set's scenes are grayscale, with smaller objects, and its classes are named
``e``, ``d`` ... ``a``, in reverse order, not as the shapes the pretrained model knows: nothing is
copied by name, the box predictor starts fresh, and what carries over is the backbone, the
pyramid, the RPN and the box head. Both runs use the ``cpu-fast`` recipe.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from pathlib import Path

import frcnn
from frcnn.data.synth import write_synth


def pretrain(out: Path, minutes: float) -> Path:
    """The "pretrained" model: cpu-fast on 800 generated colour images of the shapes."""
    best = out / "pretrained" / "weights" / "best.safetensors"
    if best.exists():
        return best
    write_synth(out / "source", 800, size=256, seed=100)
    cfg = frcnn.load_config(
        "cpu-fast",
        [],
        **{
            "data.train": str(out / "source"),
            "schedule.time_budget": minutes,
            "run.out": str(out / "pretrained"),
            "run.seed": 0,
        },
    )
    result = frcnn.train(cfg)
    return result.best or result.last


def small_set(out: Path, n: int, seed: int) -> tuple[Path, Path]:
    """``n`` training and 100 held-out grayscale images with smaller objects, classes
    renamed (and reordered) so that none matches the pretrained model's."""
    sets = []
    for part, count, offset in (("train", n, 0), ("held_out", 100, 1000)):
        folder = out / f"small-{seed}" / part
        if not folder.exists():
            ann = write_synth(
                folder, count, size=256, grayscale=True, seed=seed + offset, object_size=(16, 64)
            )
            data = json.loads(ann.read_text())
            for cat in data["categories"]:  # the shapes as "e", "d", ... "a", in reverse
                cat["name"] = chr(ord("a") + len(data["categories"]) - cat["id"])
            ann.write_text(json.dumps(data))
        sets.append(folder)
    return sets[0], sets[1]


def run(train: Path, held_out: Path, out: Path, minutes: float, seed: int, weights: str | None):
    """mAP50 on ``held_out`` of cpu-fast for ``minutes`` on ``train`` (from ``weights``)."""
    values = {
        "data.train": str(train),
        "schedule.time_budget": minutes,
        "run.out": str(out),
        "run.seed": seed,
        "model.weights": weights,
    }
    result = frcnn.train(frcnn.load_config("cpu-fast", [], **values))
    scored = frcnn.evaluate(result.best or result.last, held_out)
    return float(scored.coco["AP50"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-minutes", type=float, default=4)
    parser.add_argument("--minutes", type=float, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-images", type=int, default=100)
    parser.add_argument("--out", default="runs/bench-finetune")
    args = parser.parse_args()
    logging.getLogger("frcnn").setLevel(logging.WARNING)
    out = Path(args.out)
    pretrained = pretrain(out, args.pretrain_minutes)
    print(f"pretrained: {pretrained} ({args.pretrain_minutes:g} min of cpu-fast)")
    rows = []
    for seed in args.seeds:
        train, held_out = small_set(out, args.train_images, seed)
        tuned = run(train, held_out, out / f"tuned-{seed}", args.minutes, seed, str(pretrained))
        scratch = run(train, held_out, out / f"scratch-{seed}", args.minutes, seed, None)
        rows.append((seed, tuned, scratch))
        print(f"seed {seed}: fine-tuned mAP50 {tuned:.3f}  from scratch {scratch:.3f}", flush=True)
    tuned = [r[1] for r in rows]
    scratch = [r[2] for r in rows]
    print(
        f"{args.minutes:g} min on {args.train_images} images, {len(rows)} seeds: fine-tuned "
        f"{statistics.mean(tuned):.3f} (min {min(tuned):.3f}), from scratch "
        f"{statistics.mean(scratch):.3f} (max {max(scratch):.3f})"
    )


if __name__ == "__main__":
    main()
