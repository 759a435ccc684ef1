"""The ``frcnn`` command line: one module per command, each with ``register`` and ``run``."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .._version import __version__
from ..checks import check_args
from ..errors import FrcnnError
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
    serve,
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
    serve,
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
    """Run a command. An error about what the user gave (:class:`frcnn.errors.FrcnnError`,
    or an ``OSError`` on their files) ends in one line naming the command, exit status 2;
    anything else is a bug in frcnn: one line saying so and where the traceback was
    written, exit status 1 (``--debug`` or ``FRCNN_DEBUG=1`` raises both instead)."""
    args = build_parser().parse_args(argv)
    follower = int(os.environ.get("RANK", "0")) > 0  # a torchrun rank other than 0
    logging.basicConfig(
        level=logging.WARNING if args.quiet or follower else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    if follower:  # rank 0 prints what the job found; the others only warn
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    command = " ".join(filter(None, [args.command, getattr(args, "data_command", None)]))
    out = getattr(args, "out", None)
    new_out = Path(out) if isinstance(out, str) and out and not Path(out).exists() else None
    code = _run(args, command, argv)
    if code not in (0, None) and not follower:
        _remove_if_empty(new_out)  # a failed command leaves no empty folder behind
    return code


def _remove_if_empty(folder: Path | None) -> None:
    """Remove ``folder`` (made by the command that failed) when it holds no file."""
    if folder is not None and folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
        shutil.rmtree(folder, ignore_errors=True)


def _run(args: argparse.Namespace, command: str, argv: Sequence[str] | None) -> int:
    """The command, its errors as :func:`main` describes them."""
    try:
        check_args(args)  # the values no command can use, from one table
        return args.func(args)
    except BrokenPipeError:  # the reader went away (`frcnn data check --json | head`)
        try:  # Python would complain again when it flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass  # stdout is not a real file (e.g. captured by a test)
        return 0
    except (FrcnnError, OSError) as err:
        if args.debug or os.environ.get("FRCNN_DEBUG"):
            raise
        line = f"frcnn {command}: error: {err}"
        print(line, file=sys.stderr)
        _to_run_log(line)
        return 2
    except Exception as err:  # a bug in frcnn: say so, keep the traceback
        if args.debug or os.environ.get("FRCNN_DEBUG"):
            raise
        report = write_bug_report(err, sys.argv if argv is None else ["frcnn", *argv])
        line = (
            f"frcnn {command}: internal error ({type(err).__name__}: {err}); this is a bug in "
            f"frcnn, not in what you gave it. The traceback is in {report}: please report the "
            "bug to the frcnn developers with that file attached (it holds the command and "
            "the versions)"
        )
        print(line, file=sys.stderr)
        _to_run_log(line, err)
        return 1


def write_bug_report(err: BaseException, argv: Sequence[str]) -> Path:
    """The command, the versions and the traceback of ``err``, in a new file in the
    temporary folder; returns its path."""
    import platform
    import tempfile
    import time
    import traceback

    versions = [f"frcnn {__version__}", f"Python {platform.python_version()}"]
    for name in ("torch", "torchvision", "numpy"):
        module = sys.modules.get(name)
        versions.append(f"{name} {getattr(module, '__version__', 'not loaded')}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = "\n".join(
        [
            f"command: {' '.join(argv)}",
            f"platform: {platform.platform()}",
            "versions: " + ", ".join(versions),
            "",
            "".join(traceback.format_exception(err)),
        ]
    )
    fd, name = tempfile.mkstemp(prefix=f"frcnn-bug-{stamp}-", suffix=".txt", text=True)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return Path(name)


def _to_run_log(line: str, err: BaseException | None = None) -> None:
    """A fatal error also goes to the run's ``log.txt`` when a run had started one (with
    the traceback for a bug)."""
    exc_info = (type(err), err, err.__traceback__) if err is not None else None
    for handler in logging.getLogger("frcnn").handlers:
        if isinstance(handler, logging.FileHandler):
            handler.emit(logging.LogRecord("frcnn", logging.ERROR, "", 0, line, None, exc_info))
