"""Optimiser and learning-rate schedule: plain functions of plain values."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import InputError


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups: weights with decay, and norms and biases without."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: nn.Module, name: str, lr: float, momentum: float, nesterov: bool, weight_decay: float
) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over :func:`param_groups`."""
    groups = param_groups(model, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise InputError(f"unknown optimiser {name!r}; choose sgd or adamw")


# The warm-up never takes more than this share of the (possibly budget-shortened) run.
WARMUP_MAX_SHARE = 0.3

# Where the 1x recipe (12 epochs, x0.1 at epochs 8 and 11; "step": x0.1 every 7 epochs)
# changes the rate, as fractions of the run, so that any length gets the same shape.
DEFAULT_MILESTONES = (8 / 12, 11 / 12)
DEFAULT_STEP_SIZE = 7 / 12


def run_fractions(values: list[float] | None, epochs: int) -> list[float]:
    """Milestones as fractions of the run: ``None`` gives the 1x recipe's positions, values
    all below 1 are fractions already, others are epochs (of ``epochs``)."""
    if values is None:
        return list(DEFAULT_MILESTONES)
    if all(0 < v < 1 for v in values):
        return sorted(float(v) for v in values)
    return sorted(float(v) / epochs for v in values)


@dataclass
class LRSchedule:
    """Learning-rate multiplier as a function of the optimiser step.

    Linear warm-up from ``warmup_factor`` over ``warmup_steps``, then ``policy`` over the
    run: ``step`` (x gamma every ``step_size``), ``multistep`` (x gamma at each milestone),
    ``cosine`` (to zero) or ``constant``. Milestones and step sizes are positions in the
    run: given in epochs (of ``epochs``), as fractions (values below 1), or left out
    (``None``) for the 1x recipe's positions (2/3 and 11/12 of the run; every 7/12 of it),
    so ``--epochs 3`` decays like ``--epochs 12``. When a time budget shortens the run
    (:meth:`fit_total`) the schedule is compressed onto the steps that fit. The warm-up
    keeps its length (it is about the first steps, not the length of the run) unless that
    is more than :data:`WARMUP_MAX_SHARE` of the run (:meth:`warmup_shortened` says so).
    """

    total_steps: int
    epochs: int
    policy: str = "multistep"
    warmup_steps: int = 0
    warmup_factor: float = 0.001
    step_size: float | None = None
    gamma: float = 0.1
    milestones: list[float] | None = None

    def __post_init__(self) -> None:
        if self.policy not in ("step", "multistep", "cosine", "constant"):
            raise InputError(f"unknown schedule policy {self.policy!r}")
        self._marks = run_fractions(self.milestones, self.epochs)
        size = self.step_size
        self._step = DEFAULT_STEP_SIZE if size is None else size if size < 1 else size / self.epochs
        if self._step <= 0:
            raise InputError(f"schedule step_size must be > 0, got {size}")

    def fit_total(self, total_steps: int) -> None:
        """Make the schedule end after ``total_steps`` optimiser steps."""
        self.total_steps = max(1, int(total_steps))

    def warmup_length(self) -> float:
        """Warm-up steps actually used: at most :data:`WARMUP_MAX_SHARE` of the run."""
        return min(self.warmup_steps, WARMUP_MAX_SHARE * self.total_steps)

    def warmup_shortened(self) -> bool:
        """True when the run is too short for the configured warm-up."""
        return self.warmup_length() < self.warmup_steps

    def late_milestones(self) -> list[float]:
        """Milestones given in epochs that the run never reaches (the rate never decays)."""
        return [m for m in self._marks if m >= 1]

    def __call__(self, step: int) -> float:
        factor = 1.0
        warmup = self.warmup_length()
        if step < warmup:
            alpha = step / max(1.0, warmup)
            factor = self.warmup_factor * (1 - alpha) + alpha
        done = min(step, self.total_steps) / max(1, self.total_steps)
        if self.policy == "step":
            return factor * self.gamma ** int(done / self._step + 1e-9)
        if self.policy == "multistep":
            return factor * self.gamma ** bisect.bisect_right(self._marks, done + 1e-12)
        if self.policy == "cosine":
            return factor * 0.5 * (1 + math.cos(math.pi * done))
        return factor


def warmup_warning(schedule: LRSchedule, steps_per_epoch: int) -> str | None:
    """A note when the warm-up would take more than :data:`WARMUP_MAX_SHARE` of the run
    (None when it fits)."""
    if not schedule.warmup_shortened():
        return None
    return (
        f"the run ({schedule.total_steps} optimiser steps) is too short for its warm-up "
        f"({schedule.warmup_steps} steps, {schedule.warmup_steps / steps_per_epoch:.3g} "
        f"epochs): warm-up shortened to {schedule.warmup_length():.0f} steps "
        f"({WARMUP_MAX_SHARE:.0%} of the run); set schedule.warmup_epochs to choose"
    )


def schedule_warnings(schedule: LRSchedule, steps_per_epoch: int) -> list[str]:
    """What a person should know about a schedule that does not fit its run."""
    notes = [w for w in [warmup_warning(schedule, steps_per_epoch)] if w]
    late = schedule.late_milestones()
    if late and schedule.policy == "multistep":
        epochs = ", ".join(f"{m * schedule.epochs:g}" for m in late)
        notes.append(
            f"schedule.milestones at epoch {epochs} are not before the last epoch "
            f"({schedule.epochs}): the rate never decays there; leave milestones out to "
            "scale the default ones to the run, or give fractions of the run (0.67, 0.92)"
        )
    return notes
