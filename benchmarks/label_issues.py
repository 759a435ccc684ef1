"""Does ``frcnn kfold`` find label errors? Corrupt a synthetic set on purpose, cross-validate,
and count how many of the top-k ranked issues are the corrupted boxes.

Writes N generated images, then corrupts a share of them, one error each, spread evenly
over the four kinds: a box removed (missing label), a box's class changed (swapped), a box
shifted by 60% of its width (badly drawn) and a box added where nothing is (spurious). Runs
``kfold`` with the cpu-fast recipe and a time budget per fold, then prints precision among
the top k of the ranked list (a hit: an issue on a corrupted image of the same kind) and
recall of the corrupted boxes.

    .venv/bin/python benchmarks/label_issues.py [--n 900] [--corrupt 60] [--folds 3] [--minutes 5] [key=value ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from frcnn.config import load_config
from frcnn.data.synth import write_synth
from frcnn.experiments.kfold import run_kfold

KINDS = ("missing_label", "swapped_label", "bad_box", "spurious_label")


def corrupt(ann_file: Path, count: int, seed: int) -> dict[str, str]:
    """Corrupt ``count`` images of a COCO file in place; file name -> the kind done."""
    rng = np.random.default_rng(seed)
    coco = json.loads(ann_file.read_text())
    by_image: dict[int, list[dict]] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    images = [im for im in coco["images"] if len(by_image.get(im["id"], [])) >= 1]
    chosen = rng.choice(len(images), count, replace=False)
    done, removed = {}, set()
    for n, i in enumerate(chosen):
        im, kind = images[i], KINDS[n % 4]
        ann = by_image[im["id"]][0]
        if kind == "missing_label":
            removed.add(ann["id"])
        elif kind == "swapped_label":
            ann["category_id"] = ann["category_id"] % len(coco["categories"]) + 1
        elif kind == "bad_box":
            ann["bbox"][0] = min(
                ann["bbox"][0] + 0.6 * ann["bbox"][2], im["width"] - ann["bbox"][2]
            )
        else:
            side = 0.15 * im["width"]
            boxes = np.array([a["bbox"] for a in by_image[im["id"]]])
            for _ in range(50):  # a spot clear of every object
                x, y = rng.uniform(0, im["width"] - side, 2)
                gap = (
                    (x + side < boxes[:, 0])
                    | (x > boxes[:, 0] + boxes[:, 2])
                    | (y + side < boxes[:, 1])
                    | (y > boxes[:, 1] + boxes[:, 3])
                )
                if gap.all():
                    break
            new = {**ann, "id": 10**7 + n, "bbox": [x, y, side, side], "area": side * side}
            coco["annotations"].append(new)
        done[im["file_name"]] = kind
    coco["annotations"] = [a for a in coco["annotations"] if a["id"] not in removed]
    ann_file.write_text(json.dumps(coco))
    return done


def rank_again(out: Path) -> Path:
    """The label issues of an earlier run's out-of-fold predictions, ranked again."""
    from frcnn.data.check import check_dataset
    from frcnn.data.sources import read_dataset
    from frcnn.evaluation.coco import read_coco_results
    from frcnn.experiments.label_issues import find_label_issues, write_label_issues

    ds, _ = check_dataset(read_dataset(out / "data"), "header")
    preds = read_coco_results(out / "kfold" / "oof_predictions.json", ds)
    issues = find_label_issues(ds, preds)
    return write_label_issues(issues, ds, preds, out / "kfold" / "label_issues")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=900)
    parser.add_argument("--corrupt", type=int, default=60)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per fold")
    parser.add_argument("--out", default="runs/label-issues-bench")
    parser.add_argument(
        "--rank-only",
        action="store_true",
        help="rank again from the out-of-fold predictions of an earlier run in --out",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        default=["eval.every=100"],
        help="train config overrides (default eval.every=100: the held-out fold, a third of "
        "the data, is scored once at the end instead of eating the budget every epoch)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    start = time.perf_counter()
    if args.rank_only:
        truth = json.loads((out / "corrupted.json").read_text())
        issues_csv = rank_again(out)
    else:
        shutil.rmtree(out, ignore_errors=True)
        write_synth(out / "data", args.n, 256, seed=0)
        truth = corrupt(out / "data" / "annotations.json", args.corrupt, seed=1)
        (out / "corrupted.json").write_text(json.dumps(truth))
        values = {"data.train": str(out / "data"), "schedule.time_budget": args.minutes}
        result = run_kfold(
            load_config("cpu-fast", args.overrides, **values), args.folds, out=out / "kfold"
        )
        print(result.table())
        issues_csv = result.label_issues
    with issues_csv.open() as f:
        issues = list(csv.DictReader(f))
    print(
        f"{len(issues)} issues ranked from {args.folds}-fold out-of-fold predictions "
        f"({time.perf_counter() - start:.0f} s); {len(truth)} corrupted images"
    )
    for k in (10, 20, 40):
        top = issues[:k]
        hits = sum(truth.get(r["file_name"]) == r["kind"] for r in top)
        print(f"precision among the top {k}: {hits}/{len(top)} = {hits / max(len(top), 1):.2f}")
    found = {(r["file_name"], r["kind"]) for r in issues[: 2 * len(truth)]}
    for kind in KINDS:
        wanted = [f for f, k in truth.items() if k == kind]
        got = sum((f, kind) in found for f in wanted)
        print(f"{kind:>15}: {got}/{len(wanted)} corrupted images in the top {2 * len(truth)}")


if __name__ == "__main__":
    main()
