"""The ``frcnn`` command line: one module per command, each with ``register`` and ``run``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from . import anchors, convert_weights, data, demo, models, predict, train
from . import eval as eval_command

# In the order ``frcnn --help`` lists them.
COMMANDS = [demo, convert_weights, data, anchors, train, eval_command, predict, models]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = argparse.ArgumentParser(
        prog="frcnn",
        description="Train, evaluate and use Faster R-CNN object detectors on your own data.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only print results")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; user errors end in one line naming the command, exit status 2
    (``FRCNN_DEBUG=1`` shows the traceback)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except (ValueError, TypeError, KeyError, FileNotFoundError, RuntimeError, ImportError) as err:
        if os.environ.get("FRCNN_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"frcnn {args.command}: error: {message}", file=sys.stderr)
        return 2
