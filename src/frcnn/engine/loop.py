"""One epoch of training: forward, backward, (accumulated) optimiser steps, a NaN guard."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..errors import FrcnnError
from .device import autocast_context

log = logging.getLogger("frcnn")


@dataclass
class StepOptions:
    """How each step is taken (plain values; the trainer reads them from the config)."""

    amp: str = "none"  # none | fp16 | bf16
    grad_clip: float | None = None
    accumulate: int = 1
    l1_lambda: float = 0.0
    nan_policy: str = "stop"  # stop | skip
    max_nan_skips: int = 10


class NonFiniteLossError(FrcnnError, FloatingPointError):
    """A loss became NaN or infinite."""


def l1_penalty(model: nn.Module) -> Tensor:
    """Sum of absolute values of the trainable weights (not norms or biases)."""
    return sum(p.abs().sum() for p in model.parameters() if p.requires_grad and p.ndim > 1)


@dataclass
class EpochStats:
    """Mean losses of the steps taken, and what was counted on the way."""

    losses: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    images: int = 0
    seconds: float = 0.0
    nan_skipped: int = 0
    aug_dropped: int = 0
    unreadable: int = 0
    invalid_dropped: int = 0  # boxes of streamed rows that could not be trained on

    def add(self, values: dict[str, float], images: int) -> None:
        self.steps += 1
        self.images += images
        for k, v in values.items():
            self.losses[k] = self.losses.get(k, 0.0) + v

    def finish(self, seconds: float) -> EpochStats:
        self.losses = {k: v / max(self.steps, 1) for k, v in self.losses.items()}
        self.seconds = seconds
        return self


def _losses(model: nn.Module, imgs, targets, options: StepOptions, device) -> dict[str, Tensor]:
    imgs = [im.to(device, non_blocking=True) for im in imgs]
    targets = [{k: v.to(device) for k, v in t.items() if k in ("boxes", "labels")} for t in targets]
    with autocast_context(device, options.amp):
        return model(imgs, targets)


def _check_finite(loss: Tensor, losses: dict, options: StepOptions, where: str, skipped: int):
    """Raise on a non-finite loss unless ``nan_policy="skip"`` allows one more skip."""
    terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
    message = f"non-finite loss at {where}: {terms}"
    if options.nan_policy != "skip" or skipped > options.max_nan_skips:
        more = (
            f" (more than {options.max_nan_skips} skipped)" if options.nan_policy == "skip" else ""
        )
        raise NonFiniteLossError(
            f"{message}{more}. Lower the learning rate, add gradient clipping (optim.grad_clip), "
            "or check the data with `frcnn data check`."
        )
    log.warning("%s: step skipped (%d so far)", message, skipped)


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    grad_clip: float | None,
    grad_scale: float = 1.0,
) -> None:
    """Apply the accumulated gradients (multiplied by ``grad_scale``), then advance the
    schedule by one step."""
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    if grad_scale != 1.0:
        torch._foreach_mul_([p.grad for p in params], grad_scale)
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[tuple[list[Tensor], list[dict]]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    options: StepOptions,
    device: torch.device,
    epoch: int,
    should_stop: Callable[[], bool] = lambda: False,
    on_step: Callable[[int, dict[str, float], int], None] | None = None,
) -> EpochStats:
    """One pass over ``batches`` (``epoch`` counted from 0); mean losses of the steps taken.

    Gradients of ``options.accumulate`` batches make one optimiser step; batches left over at
    the end of the epoch (or at a stop) make a last step with their mean gradient, so the
    schedule advances ``ceil(batches / accumulate)`` times. ``on_step(i, losses, images)`` follows
    every batch; ``should_stop()`` is asked after it.

    Raises:
        NonFiniteLossError: a NaN/inf loss with ``nan_policy="stop"``, or more than
            ``max_nan_skips`` of them with ``"skip"``; the message names the step and terms.
    """
    model.train()
    stats, pending, start = EpochStats(), 0, time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    for i, (imgs, targets) in enumerate(batches):
        stats.unreadable += getattr(targets, "unreadable", 0)
        if not imgs:
            continue  # every image of the batch was unreadable
        stats.aug_dropped += sum(int(t.get("aug_dropped", 0)) for t in targets)
        stats.invalid_dropped += sum(int(t.get("invalid_dropped", 0)) for t in targets)
        losses = _losses(model, imgs, targets, options, device)
        loss = sum(losses.values())
        if options.l1_lambda:
            loss = loss + options.l1_lambda * l1_penalty(model)
        if not torch.isfinite(loss):
            stats.nan_skipped += 1
            where = f"epoch {epoch + 1}, step {i + 1}"
            _check_finite(loss, losses, options, where, stats.nan_skipped)
            continue  # no backward: the gradients of earlier batches are untouched
        scaled = loss / options.accumulate
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        pending += 1
        if pending == options.accumulate:
            optimizer_step(optimizer, scheduler, scaler, options.grad_clip)
            pending = 0
        values = {k: float(v.detach()) for k, v in losses.items()}
        stats.add(values, len(imgs))
        if on_step is not None:
            on_step(i, values, len(imgs))
        if should_stop():
            break
    if pending:
        grad_scale = options.accumulate / pending
        optimizer_step(optimizer, scheduler, scaler, options.grad_clip, grad_scale)
    return stats.finish(time.perf_counter() - start)


@torch.no_grad()
def validation_losses(
    model: nn.Module, batches: Iterable, device: torch.device, amp: str = "none"
) -> tuple[dict[str, float], int]:
    """Mean losses per image on validation batches, and the number of images: the model in
    training mode (so that it computes them) with its batch norms frozen, and the random
    number generators left as they were, so training goes on exactly as without this pass."""
    was_training = model.training
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    sums: dict[str, float] = {}
    count = 0
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        for imgs, targets in batches:
            if not imgs:
                continue
            losses = _losses(model, imgs, targets, StepOptions(amp), device)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(imgs)
            count += len(imgs)
    model.train(was_training)
    return ({k: v / count for k, v in sums.items()} if count else {}), count
