"""The ``frcnn`` command line: one module per command, each with ``register`` and ``run``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from . import (
    anchors,
    benchmark,
    calibrate,
    convert_weights,
    data,
    demo,
    ensemble,
    explain,
    export,
    kfold,
    label_issues,
    models,
    predict,
    pretrain,
    recipes,
    train,
    tune,
)
from . import eval as eval_command

# In the order ``frcnn --help`` lists them.
COMMANDS = [
    demo,
    convert_weights,
    data,
    anchors,
    train,
    eval_command,
    calibrate,
    predict,
    ensemble,
    export,
    benchmark,
    explain,
    models,
    recipes,
    pretrain,
    kfold,
    tune,
    label_issues,
]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = argparse.ArgumentParser(
        prog="frcnn",
        description="Train, evaluate and use Faster R-CNN object detectors on your own data.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only print results")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error"
    )
    parser.add_argument("--version", action="version", version=f"frcnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; user errors end in one line naming the command, exit status 2
    (``--debug`` or ``FRCNN_DEBUG=1`` shows the traceback)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (`frcnn data check --json | head`)
        try:  # Python would complain again when it flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass  # stdout is not a real file (e.g. captured by a test)
        return 0
    except USER_ERRORS as err:
        if args.debug or os.environ.get("FRCNN_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        command = " ".join(filter(None, [args.command, getattr(args, "data_command", None)]))
        line = f"frcnn {command}: error: {message}"
        print(line, file=sys.stderr)
        _to_run_log(line)
        return 2


# Errors that come from what the user gave (files, numbers, names), not from a bug: one
# line, no traceback. OSError covers unreadable, missing and unwritable files;
# FloatingPointError a diverging run (NonFiniteLossError says what to change).
USER_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    OSError,
    RuntimeError,
    ImportError,
    FloatingPointError,
)


def _to_run_log(line: str) -> None:
    """A fatal error also goes to the run's ``log.txt`` when a run had started one."""
    for handler in logging.getLogger("frcnn").handlers:
        if isinstance(handler, logging.FileHandler):
            handler.emit(logging.LogRecord("frcnn", logging.ERROR, "", 0, line, None, None))
