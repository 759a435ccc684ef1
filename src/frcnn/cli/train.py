"""``frcnn train``: train a detector into a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import TILE_OVERLAP, VAL_SPLIT

if TYPE_CHECKING:
    from ..config import TrainConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a detector; writes a run folder")
    add_train_options(p)
    p.set_defaults(func=run)


def add_train_options(p: argparse.ArgumentParser) -> None:
    """The options of ``frcnn train`` (``kfold`` and ``tune`` train with them too)."""
    p.add_argument("--data", help="training data (any supported format)")
    p.add_argument("--val", help="validation data (default: hold out --val-split of --data)")
    p.add_argument(
        "--val-split", type=float, help=f"fraction held out for validation (default {VAL_SPLIT})"
    )
    p.add_argument("--model", help="model name (frcnn models; default: the recipe's)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--img-size", type=int, help="longest image side in pixels")
    p.add_argument("--out", help="run folder (default runs/train, numbered if taken)")
    p.add_argument(
        "--weights",
        help="start from an frcnn model file, a torchvision .pth, or COCO-trained weights: "
        "coco (--model's) or coco:MODEL (trains MODEL; default recipe: finetune)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--config",
        help="YAML config file or recipe name (frcnn recipes); default: cpu-fast on a machine "
        "without a GPU, tv-default with one (unless --model, --weights or --resume choose)",
    )
    p.add_argument(
        "--anchors", help="anchors file written by frcnn anchors --out (sets the model's anchors)"
    )
    p.add_argument("--time-budget", type=float, help="minutes of training (schedule fitted to it)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--tile", type=int, help="train on tiles of this size")
    p.add_argument("--overlap", type=float, help=f"tile overlap fraction (default {TILE_OVERLAP})")
    p.add_argument(
        "--max-det",
        type=int,
        help="most detections per image (per tile when tiled) kept and counted by the COCO "
        "numbers (default 100); sets model.args.box_detections_per_img and eval.max_dets",
    )
    p.add_argument("overrides", nargs="*", help="section.key=value, e.g. optim.lr=0.01")


# Command-line options and the configuration keys they set.
OPTION_KEYS = {
    "data": "data.train",
    "val": "data.val",
    "val_split": "data.val_split",
    "model": "model.name",
    "weights": "model.weights",
    "epochs": "schedule.epochs",
    "batch_size": "data.batch_size",
    "img_size": "data.img_size",
    "out": "run.out",
    "time_budget": "schedule.time_budget",
    "tile": "data.tile",
    "overlap": "data.overlap",
    "device": "run.device",
}


def config_from_args(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> TrainConfig:
    """The training configuration the options of :func:`add_train_options` describe
    (options named in ``skip`` are left to the caller)."""
    from ..config import load_config, read_anchors
    from ..modeling.catalog import COCO_PREFIX, is_coco, starts_from_coco

    config = args.config
    if args.resume and config is None and args.out and (Path(args.out) / "config.yaml").exists():
        config = Path(args.out) / "config.yaml"  # resume the run as it was configured
    values = {key: getattr(args, o) for o, key in OPTION_KEYS.items() if o not in skip}
    if starts_from_coco(args.weights) and config is None and not args.resume:
        config = "finetune"
        print("starting from COCO weights: the finetune recipe (--config to choose another)")
    if is_coco(args.weights) and args.model is None:
        values["model.name"] = args.weights.removeprefix(COCO_PREFIX)
    if config is None:
        config = device_recipe(args)
    values["run.resume"] = True if args.resume else None
    if args.anchors:
        values.update(read_anchors(args.anchors))
    if args.max_det is not None:
        values["eval.max_dets"] = args.max_det
        values["model.args.box_detections_per_img"] = args.max_det
    return load_config(config, args.overrides, **values)


# The recipe trained when the command chooses none, by where it trains.
DEVICE_RECIPES = {
    "cpu": (
        "cpu-fast",
        "no GPU: training the cpu-fast recipe (ResNet-18 FPN, 256 px images); --config "
        "tv-default for torchvision's ResNet-50 recipe",
    ),
    "cuda": (
        "tv-default",
        "GPU: training the tv-default recipe (torchvision's ResNet-50 FPN); --config cpu-fast "
        "for the small fast one",
    ),
}


def device_recipe(args: argparse.Namespace) -> str | None:
    """The recipe for the device training runs on when nothing else chooses the model
    (``--config``, ``--model``, ``--weights``, ``--resume`` or a ``model.name=`` override),
    said in one line (by the first process under torchrun); else None."""
    import os

    chosen = args.config or args.model or args.weights or args.resume
    if chosen or any(o.partition("=")[0].strip() == "model.name" for o in args.overrides):
        return None
    from ..engine.device import resolve_device

    kind = "cpu" if resolve_device(args.device or "auto").type == "cpu" else "cuda"
    recipe, line = DEVICE_RECIPES[kind]
    if os.environ.get("RANK", "0") == "0":
        print(line)
    return recipe


def run(args: argparse.Namespace) -> int:
    from ..engine.trainer import train

    result = train(config_from_args(args))
    print(f"run folder: {result.out}")
    print(
        f"best weights: {result.best} (epoch {result.best_epoch})"
        if result.best
        else f"last weights: {result.last}"
    )
    if result.metrics and result.metrics["AP50"] < 0:
        print("validation: nothing to measure (the validation data holds no boxes)")
    elif result.metrics:
        m = result.metrics
        print(
            f"validation: mAP {m['AP']:.4f}  mAP50 {m['AP50']:.4f}  F1 {m['F1']:.4f}  score {m['score']:.4f}"
        )
    return 0
