"""``frcnn pretrain-backbone``: train a backbone as an image classifier, keep its weights."""

from __future__ import annotations

import argparse

from ..defaults import VAL_SPLIT

# Options passed to PretrainConfig when given (its fields hold the defaults the help states).
KEYS = (
    "epochs",
    "batch_size",
    "img_size",
    "lr",
    "optimizer",
    "momentum",
    "weight_decay",
    "lr_step",
    "val_split",
    "out",
    "device",
    "workers",
    "seed",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain-backbone",
        help="train a backbone as an image classifier (class-per-subfolder images); its "
        "weights load with pretrained_backbone=FILE",
        description="Train a registered backbone (or a model name's backbone) as a classifier "
        "of ROOT/<class>/<images> (or ROOT/train/<class> and ROOT/val/<class>), with SGD "
        "(lr 0.1, momentum 0.9, weight decay 5e-4), a one-epoch warm-up and step decay. Try "
        "it offline: frcnn data synth data/shapes-cls --classify --n 500",
    )
    p.add_argument("--data", required=True, help="image folder, one sub-folder per class")
    p.add_argument(
        "--backbone",
        required=True,
        help="backbone name (resnet18, cspdarknet53 ...) or a model name (cspmirrornet_pan)",
    )
    p.add_argument("--epochs", type=int, help="default 30")
    p.add_argument("--batch-size", type=int, help="default 32")
    p.add_argument("--img-size", type=int, help="square input side (default 224)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 0.1)")
    p.add_argument(
        "--optimizer",
        choices=["sgd", "adamw"],
        help="sgd (default, the reference recipe) or adamw (give --lr 0.001): on small sets "
        "from scratch AdamW learns far sooner",
    )
    p.add_argument("--momentum", type=float, help="default 0.9 (sgd)")
    p.add_argument("--weight-decay", type=float, help="default 5e-4")
    p.add_argument(
        "--lr-step", type=int, help="epochs between x0.1 decays (default: a third of the run)"
    )
    p.add_argument(
        "--val-split",
        type=float,
        help=f"held out of each class without a val/ folder (default {VAL_SPLIT})",
    )
    p.add_argument("--out", help="run folder (default runs/pretrain, numbered if taken)")
    p.add_argument("--device", help="auto (default), cpu, cuda ...")
    p.add_argument("--workers", type=int, help="data loading processes (default 2)")
    p.add_argument("--seed", type=int, help="default 0")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..modeling.backbones import BACKBONES
    from ..modeling.catalog import MODELS
    from ..pretrain.loop import PretrainConfig, pretrain_backbone

    backbone = MODELS.get(args.backbone)["backbone"] if args.backbone in MODELS else args.backbone
    BACKBONES.get(backbone)  # an unknown name is an error with suggestions, before any data
    given = {k: getattr(args, k) for k in KEYS if getattr(args, k) is not None}
    result = pretrain_backbone(PretrainConfig(data=args.data, backbone=backbone, **given))
    print(f"best accuracy {result.accuracy:.4f}; backbone weights {result.weights}")
    print(
        f"next: frcnn train --model MODEL --data DATA "
        f"model.args.pretrained_backbone={result.weights}  (MODEL with backbone {backbone})"
    )
    return 0
