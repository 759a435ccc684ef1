"""One table of the values that can mean something, used by every command.

Each rule names what it accepts ("an integer >= 1", "a number in [0, 1]"); the table maps
an option's name (the configuration key's last part, or the command-line option's) to its
rule, so ``--conf 1.5`` in ``predict``, ``eval.conf: 1.5`` in a config file and a search
space reaching 1.5 for ``eval.conf`` get the same message. ``None`` always passes: it is
an option left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InputError, InputTypeError


@dataclass(frozen=True)
class Rule:
    """What a value must be: an integer or any number, within ``test``, said as ``text``."""

    integer: bool
    test: Callable[[float], bool]
    text: str

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot mean anything here (None: it can)."""
        if not is_number(value):
            kind = "an integer" if self.integer else "a number"
            return f"must be {kind}, got {value!r}"
        if self.integer and (isinstance(value, float) and not value.is_integer()):
            return f"must be an integer {self.text}, got {value!r}"
        if math.isnan(value) or not self.test(value):
            return f"must be {self.text}, got {value!r}"
        return None


def at_least(low: int, unit: str = "") -> Rule:
    return Rule(True, lambda v: v >= low, f">= {low}{unit}")


POSITIVE = Rule(False, lambda v: v > 0, "> 0")
PROBABILITY = Rule(False, lambda v: 0 <= v <= 1, "in [0, 1]")
FRACTION = Rule(False, lambda v: 0 <= v < 1, "in [0, 1)")
OPEN_FRACTION = Rule(False, lambda v: 0 < v < 1, "in (0, 1)")
NON_NEGATIVE = Rule(False, lambda v: v >= 0, ">= 0")
PIXELS = at_least(32, " pixels")

# Option name -> rule; config keys by their last part, command-line options by their dest.
RULES: dict[str, Rule] = {
    "epochs": at_least(1),
    "batch_size": at_least(1),
    "workers": at_least(0),
    "img_size": PIXELS,
    "tile": PIXELS,
    "overlap": Rule(
        False, lambda v: 0 <= v <= 0.9, "in [0, 0.9] (tiles step at least a tenth of their side)"
    ),
    "lr": POSITIVE,
    "accumulate": at_least(1),
    "time_budget": Rule(False, lambda v: v > 0, "> 0 minutes"),
    "every": at_least(1),
    "max_dets": at_least(1),
    "max_det": at_least(1),
    "top_k": at_least(0),
    "patience": at_least(1),
    "stop_after_epochs": at_least(1),
    "conf": PROBABILITY,
    "iou": PROBABILITY,
    "val_split": OPEN_FRACTION,
    "folds": at_least(2),
    "trials": at_least(1),
    "timeout": POSITIVE,
    "images": at_least(1),
    "calibration_images": at_least(1),
    "top": at_least(0),
    "show": at_least(0),
    "threads": at_least(0),  # 0: torch's default
    "momentum": FRACTION,
    "weight_decay": NON_NEGATIVE,
    "warmup_epochs": NON_NEGATIVE,
    "warmup_factor": Rule(False, lambda v: 0 < v <= 1, "in (0, 1]"),
    "gamma": POSITIVE,
    "grad_clip": POSITIVE,
    "min_visibility": PROBABILITY,
    "tile_min_visibility": PROBABILITY,
    "repeat_threshold": Rule(False, lambda v: 0 < v <= 1, "in (0, 1]"),
    "worst_images": at_least(0),
    "max_nan_skips": at_least(0),
    "log_interval": NON_NEGATIVE,
    "seed": Rule(True, lambda v: True, "(any)"),
    "ensemble_top": at_least(0),
    "minutes": POSITIVE,
    "n": at_least(1),
    "n_val": at_least(0),
    "k": at_least(1),
    "empty_prob": PROBABILITY,
    "fixed_size": PIXELS,
    "max_lines": at_least(1),
    "min_size": PIXELS,
    "max_size": PIXELS,
    "steps": at_least(1),
    "ema_decay": Rule(False, lambda v: 0 < v < 1, "in (0, 1)"),
    "ema_tau": POSITIVE,
    "val_limit": at_least(1),
    "mosaic": PROBABILITY,
    "tile_cache_mb": at_least(0),
    "fit_anchors_below": Rule(False, lambda v: 0 < v <= 1, "in (0, 1]"),
    "stream_buffer": at_least(0),
}

# The configuration keys the table checks (``data.images``, a folder, shares a name with
# ``--images``, a count, so config keys are listed rather than matched by name).
CONFIG_KEYS = (
    "model.fit_anchors_below",
    "data.val_split",
    "data.min_visibility",
    "data.mosaic",
    "data.repeat_threshold",
    "data.batch_size",
    "data.workers",
    "data.img_size",
    "data.tile",
    "data.overlap",
    "data.tile_min_visibility",
    "data.tile_cache_mb",
    "data.val_limit",
    "data.stream_buffer",
    "optim.lr",
    "optim.momentum",
    "optim.weight_decay",
    "optim.grad_clip",
    "optim.accumulate",
    "optim.ema_decay",
    "optim.ema_tau",
    "schedule.epochs",
    "schedule.warmup_epochs",
    "schedule.warmup_factor",
    "schedule.gamma",
    "schedule.time_budget",
    "schedule.steps",
    "eval.conf",
    "eval.top_k",
    "eval.patience",
    "eval.every",
    "eval.max_dets",
    "eval.worst_images",
    "run.seed",
    "run.threads",
    "run.stop_after_epochs",
    "run.max_nan_skips",
    "run.log_interval",
)


def is_number(value: Any) -> bool:
    """An int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_value(name: str, value: Any, where: str = "") -> None:
    """Refuse a ``value`` of option ``name`` (dotted or not) that cannot mean anything.

    Raises:
        InputTypeError: not a number where one is needed. InputError: out of range.
    """
    rule = RULES.get(name.rsplit(".", 1)[-1])
    problem = None if rule is None or value is None else rule.problem(value)
    if problem:
        prefix = f"{where}: " if where else ""
        kind = InputError if is_number(value) else InputTypeError
        raise kind(f"{prefix}{name} {problem}")


def check_values(values: Mapping[str, Any], where: str = "") -> None:
    """:func:`check_value` for each ``name -> value``, every problem in one message (a
    type error when any value is of the wrong type)."""
    problems, wrong_type = [], False
    for name, value in values.items():
        try:
            check_value(name, value)
        except (InputError, InputTypeError) as err:
            problems.append(str(err))
            wrong_type = wrong_type or isinstance(err, InputTypeError)
    if problems:
        prefix = f"{where}: " if where else ""
        raise (InputTypeError if wrong_type else InputError)(prefix + "; ".join(problems))


def check_args(args: Any) -> None:
    """Every option of the table a command was given, named as on its command line."""
    values = {
        f"--{dest.replace('_', '-')}": value
        for dest, value in vars(args).items()
        if dest in RULES and value is not None
    }
    problems = [
        f"{option} {problem}"
        for option, value in values.items()
        if (problem := RULES[option[2:].replace("-", "_")].problem(value))
    ]
    if problems:
        raise InputError("; ".join(problems))
