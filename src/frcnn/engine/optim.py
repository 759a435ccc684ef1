"""Optimiser and learning-rate schedule: plain functions of plain values."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import torch
from torch import nn


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
    raise ValueError(f"unknown optimiser {name!r}; choose sgd or adamw")


# The warm-up never takes more than this share of the (possibly budget-shortened) run.
WARMUP_MAX_SHARE = 0.3


@dataclass
class LRSchedule:
    """Learning-rate multiplier as a function of the optimiser step.

    Linear warm-up from ``warmup_factor`` over ``warmup_steps``, then ``policy`` over the
    run: ``step`` (x gamma every ``step_size`` epochs), ``multistep`` (x gamma at each
    milestone epoch), ``cosine`` (to zero) or ``constant``. Epoch positions are fractions of
    the configured epochs, so when a time budget shortens the run (:meth:`fit_total`) the
    schedule is compressed onto the steps that fit. The warm-up keeps its length (it is
    about the first steps, not the length of the run) unless that is more than
    :data:`WARMUP_MAX_SHARE` of the run.
    """

    total_steps: int
    epochs: int
    policy: str = "multistep"
    warmup_steps: int = 0
    warmup_factor: float = 0.001
    step_size: int = 7
    gamma: float = 0.1
    milestones: list[int] = field(default_factory=lambda: [8, 11])

    def __post_init__(self) -> None:
        if self.policy not in ("step", "multistep", "cosine", "constant"):
            raise ValueError(f"unknown schedule policy {self.policy!r}")

    def fit_total(self, total_steps: int) -> None:
        """Make the schedule end after ``total_steps`` optimiser steps."""
        self.total_steps = max(1, int(total_steps))

    def __call__(self, step: int) -> float:
        factor = 1.0
        warmup = min(self.warmup_steps, WARMUP_MAX_SHARE * self.total_steps)
        if step < warmup:
            alpha = step / max(1.0, warmup)
            factor = self.warmup_factor * (1 - alpha) + alpha
        epoch = self.epochs * min(step, self.total_steps) / max(1, self.total_steps)
        if self.policy == "step":
            return factor * self.gamma ** int(epoch // self.step_size)
        if self.policy == "multistep":
            return factor * self.gamma ** bisect.bisect_right(sorted(self.milestones), epoch)
        if self.policy == "cosine":
            return factor * 0.5 * (1 + math.cos(math.pi * min(1.0, epoch / self.epochs)))
        return factor
