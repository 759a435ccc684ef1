"""The ``frcnn`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

log = logging.getLogger("frcnn")


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo, two_object_image

    _, target = two_object_image()
    print("ground truth:")
    for box, label in zip(target["boxes"].tolist(), target["labels"].tolist(), strict=True):
        print(f"  label {label}  box {[round(v, 1) for v in box]}")
    detections = run_demo(steps=args.steps, seed=args.seed)
    print(f"detections (score >= 0.5) after {args.steps} training steps:")
    if not detections:
        print("  none")
    for d in detections:
        print(f"  {d['name']:<10} score {d['score']:.3f}  box {d['box']}")
    return 0


def _cmd_convert_weights(args: argparse.Namespace) -> int:
    from .checkpoint import load_state_dict_file
    from .convert import model_from_torchvision
    from .model_file import save_model

    model = model_from_torchvision(load_state_dict_file(args.src))
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    path = save_model(model, args.dst, class_names=names)
    print(
        f"wrote {path}: {model.config['name']} with {model.num_classes} classes "
        f"(background included)"
    )
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from .models import MODELS

    for name, spec in MODELS.items():
        print(f"{name:<16} backbone {spec['backbone']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frcnn", description=__doc__)
    parser.add_argument("-q", "--quiet", action="store_true", help="only print results")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train a small detector on a generated image and predict")
    p.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "convert-weights", help="convert a torchvision Faster R-CNN state dict to an frcnn model"
    )
    p.add_argument("src", help="torchvision .pth state dict (loaded with weights_only=True)")
    p.add_argument("dst", help="output .safetensors model file")
    p.add_argument("--class-names", help="comma-separated names of classes 1..K-1")
    p.set_defaults(func=_cmd_convert_weights)

    p = sub.add_parser("models", help="list the registered model names")
    p.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    return args.func(args)
