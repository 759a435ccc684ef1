"""What one evaluation may cost under a time budget.

Before the first step of a budgeted run, one validation image is predicted (and, when
that leaves room, has its validation losses computed) and timed. When a full evaluation
would take more than :data:`EVAL_SHARE` of the budget, every evaluation of the run scores a
random subset of the validation images that fits (the same subset every epoch, so epochs
compare) and the validation-loss pass is skipped; the log says so once, with the numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..inference.compose import compose
from ..inference.options import InferenceOptions
from ..inference.predict import predict_batches
from .loop import validation_losses

# One evaluation may take at most this share of the time budget.
EVAL_SHARE = 0.2
# A subset never scores fewer validation images than this (or all, when there are fewer).
MIN_IMAGES = 4


@dataclass(frozen=True)
class EvalCost:
    """Measured seconds per validation image: predicting it, and its validation losses
    (None when not measured); ``val_loss``: whether the run has the validation-loss pass
    (unmeasured, it is taken to cost what predicting does)."""

    predict: float
    losses: float | None = None
    val_loss: bool = False

    @property
    def loss_seconds(self) -> float:
        if not self.val_loss:
            return 0.0
        return self.predict if self.losses is None else self.losses


@dataclass(frozen=True)
class EvalPlan:
    """How every evaluation of a budgeted run is done: on ``indices`` of the validation
    images (None: all of them), with or without the validation-loss pass, in about
    ``seconds``; ``note`` says what was cut and why (None when nothing was)."""

    indices: np.ndarray | None
    val_loss: bool
    seconds: float
    note: str | None = None


def seconds_per_image(
    run: Callable[[list, list], int], batches: Iterable, clock: Callable[[], float]
) -> float | None:
    """Seconds ``run`` takes on the first image of ``batches`` (first-call costs included,
    so the figure errs on the slow side); ``run`` returns how many images it went through.
    None when there is no image."""
    for imgs, targets in itertools.islice(batches, 1):
        if imgs:
            start = clock()
            n = run(imgs[:1], targets[:1])
            return (clock() - start) / max(1, n)
    return None


def measure_eval_cost(
    model: nn.Module,
    options: InferenceOptions,
    val: DataLoader,
    val_loss: DataLoader | None,
    amp: str,
    clock: Callable[[], float],
    cap_seconds: float,
    ranks: int = 1,
) -> EvalCost:
    """Seconds per validation image of the run's evaluation, timed on one image: predicted
    as the evaluation predicts it, then (when the ``val_loss`` loader is given, and the
    predictions alone fit in ``cap_seconds``) through the validation losses, spread over
    the images that pass covers (tiles when tiling). Random states are left as they were."""
    device = next(model.parameters()).device
    detector = compose([model], options)
    n_images = len(val.dataset)
    with torch.random.fork_rng():
        predict = (
            seconds_per_image(lambda i, t: len(predict_batches(detector, [(i, t)])), val, clock)
            or 0.0
        )
        if val_loss is None or predict * n_images / ranks > cap_seconds:
            return EvalCost(predict, None, val_loss is not None)
        per_item = seconds_per_image(
            lambda i, t: validation_losses(model, [(i, t)], device, amp)[1], val_loss, clock
        )
    items = len(val_loss.dataset) / max(1, n_images)
    return EvalCost(predict, None if per_item is None else per_item * items, True)


def plan_evaluation(
    n_images: int, cost: EvalCost, budget_seconds: float, seed: int, ranks: int = 1
) -> EvalPlan:
    """The evaluation a ``budget_seconds`` run can afford, each of ``ranks`` processes
    predicting its share of ``n_images`` at the measured ``cost``."""
    cap = budget_seconds * EVAL_SHARE
    predict = n_images * cost.predict / ranks
    losses = n_images * cost.loss_seconds / ranks
    if predict + losses <= cap:
        return EvalPlan(None, cost.val_loss, predict + losses)
    passes = " with the validation-loss pass" if cost.val_loss else ""
    full = (
        f"a full evaluation ({n_images} images{passes}) would take about {predict + losses:.0f} s"
    )
    if predict <= cap:
        note = f"{full}; each evaluation skips the validation-loss pass"
        return EvalPlan(None, False, predict, _why(note, budget_seconds))
    keep = min(n_images, max(MIN_IMAGES, int(cap * ranks / cost.predict)))
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(n_images, size=keep, replace=False))
    note = f"{full}; each evaluation scores a random {keep} of the {n_images} validation images" + (
        " and skips the validation-loss pass" if cost.val_loss else ""
    )
    return EvalPlan(indices, False, keep * cost.predict / ranks, _why(note, budget_seconds))


def _why(note: str, budget_seconds: float) -> str:
    return (
        f"time budget of {budget_seconds / 60:.1f} min: {note} (an evaluation may take "
        f"{EVAL_SHARE:.0%} of the budget); for full evaluations give more time "
        "(schedule.time_budget) or less validation data (--val)"
    )
