"""``frcnn models``: the registered models with their size, cost and CPU latency."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="list the registered models: parameters, GFLOPs, input size, CPU latency"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..modeling.catalog import COCO_WEIGHTS, MODELS, model_table

    table = model_table()
    rows = table.get("models", {})
    print(
        f"{'model':<28}{'backbone':<20}{'params':>8}{'GFLOPs':>8}{'size':>6}{'CPU ms':>8}"
        f"{'train/s':>9}{'mAP50':>7}  weights"
    )
    for name, spec in MODELS.items():
        row = rows.get(name)
        coco = "  coco" if name in COCO_WEIGHTS else ""
        if row is None:
            print(
                f"{name:<28}{spec['backbone']:<20}{'-':>8}{'-':>8}{'-':>6}{'-':>8}{'-':>9}{'-':>7}"
                f"{coco}"
            )
            continue
        print(
            f"{name:<28}{spec['backbone']:<20}{row['params'] / 1e6:>7.1f}M{row['gflops']:>8.1f}"
            f"{row['input_size']:>6}{row['latency_ms']:>8.0f}"
            f"{row.get('train_images_per_s_320', float('nan')):>9.2f}"
            f"{_fixed(row.get('learn_map50'), 3):>7}{coco}"
        )
    if rows:
        print(
            f"GFLOPs and CPU latency of one image at the input size, training images/s at "
            f"320 px (batches of two), measured by "
            f"benchmarks/models.py on {table.get('machine', 'an unknown machine')}; random "
            "weights, so the number of proposals (and the head's work) varies; mAP50: held out "
            f"after {table.get('learn', 'a fixed training budget')}"
        )
    print(
        "weights coco: COCO-trained weights published by torchvision; start from them with "
        "--weights coco:MODEL (predict, eval, export ...) or frcnn train --weights coco"
    )
    return 0


def _fixed(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
