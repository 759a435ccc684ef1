"""``frcnn models``: the registered model names."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered model names")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..modeling.catalog import MODELS

    for name, spec in MODELS.items():
        print(f"{name:<28} backbone {spec['backbone']}, neck {spec['neck']}")
    return 0
