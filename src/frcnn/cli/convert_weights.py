"""``frcnn convert-weights``: a torchvision Faster R-CNN state dict as an frcnn model file."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert-weights", help="convert a torchvision Faster R-CNN state dict to an frcnn model"
    )
    p.add_argument("src", help="torchvision .pth state dict (loaded with weights_only=True)")
    p.add_argument("dst", help="output .safetensors model file")
    p.add_argument("--class-names", help="comma-separated names of classes 1..K-1")
    p.add_argument(
        "--model",
        help="frcnn model name when the weights fit several (e.g. mobilenet_v3_large_320_fpn); "
        "default: read from the weights",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.checkpoint import load_state_dict_file
    from ..io.convert import model_from_torchvision
    from ..io.model_file import save_model

    model = model_from_torchvision(load_state_dict_file(args.src), args.model)
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    path = save_model(model, args.dst, class_names=names)
    print(
        f"wrote {path}: {model.config['name']} with {model.num_classes} classes "
        f"(background included)"
    )
    return 0
