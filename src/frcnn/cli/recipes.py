"""``frcnn recipes``: the training recipes shipped with frcnn."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="list the shipped training recipes (train --config NAME)")
    p.add_argument("name", nargs="?", help="print this recipe's YAML")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import config_path
    from ..recipes import recipe_names, recipe_summary

    if args.name:
        print(config_path(args.name).read_text().rstrip())
        return 0
    for name in recipe_names():
        print(f"{name:<12} {recipe_summary(name)}")
    print("use one with: frcnn train --config NAME --data DATA [key=value ...]")
    return 0
