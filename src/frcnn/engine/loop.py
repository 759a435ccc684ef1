"""The training step and the inference pass: small functions the trainer strings together."""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

log = logging.getLogger("frcnn")


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
    groups = param_groups(model, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"unknown optimiser {name!r}; choose sgd or adamw")


@dataclass
class LRSchedule:
    """Learning-rate multiplier as a function of training progress.

    Linear warm-up from ``warmup_factor`` over ``warmup_steps``, then ``policy`` over the
    run: ``step`` (x gamma every ``step_size`` epochs), ``multistep`` (x gamma at each
    milestone epoch), ``cosine`` (to zero) or ``constant``. Epoch positions are fractions of
    the configured epochs, so when a time budget shortens the run (:meth:`fit_total`) the
    schedule is compressed to fit it.
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
        self.total_steps = max(1, total_steps)

    def __call__(self, step: int) -> float:
        factor = 1.0
        if step < self.warmup_steps:
            alpha = step / max(1, self.warmup_steps)
            factor = self.warmup_factor * (1 - alpha) + alpha
        epoch = self.epochs * min(step, self.total_steps) / max(1, self.total_steps)
        if self.policy == "step":
            return factor * self.gamma ** int(epoch // self.step_size)
        if self.policy == "multistep":
            return factor * self.gamma ** bisect.bisect_right(sorted(self.milestones), epoch)
        if self.policy == "cosine":
            return factor * 0.5 * (1 + math.cos(math.pi * min(1.0, epoch / self.epochs)))
        return factor


@dataclass
class StepOptions:
    """How each step is taken (plain values; the trainer reads them from the config)."""

    amp: str = "none"  # none | fp16 | bf16
    grad_clip: float | None = None
    accumulate: int = 1
    l1_lambda: float = 0.0
    nan_policy: str = "stop"  # stop | skip
    max_nan_skips: int = 10


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite."""


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else CPU; any other name is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_context(device: torch.device, amp: str):
    if amp == "none":
        return nullcontext()
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError("amp=fp16 needs a CUDA device; use amp=bf16 on CPU")
        return torch.autocast("cuda", dtype=torch.float16)
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"unknown amp mode {amp!r}; choose none, fp16 or bf16")


def l1_penalty(model: nn.Module) -> Tensor:
    """Sum of absolute values of the trainable weights (not norms or biases)."""
    return sum(p.abs().sum() for p in model.parameters() if p.requires_grad and p.ndim > 1)


@dataclass
class EpochStats:
    losses: dict[str, float]
    steps: int
    images: int
    seconds: float
    nan_skipped: int = 0
    aug_dropped: int = 0


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
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> EpochStats:
    """One pass over ``batches``; returns mean losses. Stops early when ``should_stop()``.

    Raises:
        NonFiniteLossError: a NaN/inf loss with ``nan_policy="stop"``, or more than
            ``max_nan_skips`` of them with ``"skip"``; the message names the step and terms.
    """
    model.train()
    totals: dict[str, float] = {}
    steps = images = skipped = dropped = 0
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    for i, (imgs, targets) in enumerate(batches):
        imgs = [im.to(device, non_blocking=True) for im in imgs]
        dropped += sum(int(t.get("aug_dropped", 0)) for t in targets)
        targets = [
            {k: v.to(device) for k, v in t.items() if k in ("boxes", "labels")} for t in targets
        ]
        with autocast_context(device, options.amp):
            losses = model(imgs, targets)
        loss = sum(losses.values())
        if options.l1_lambda:
            loss = loss + options.l1_lambda * l1_penalty(model)
        if not torch.isfinite(loss):
            terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
            message = f"non-finite loss at epoch {epoch}, step {i}: {terms}"
            skipped += 1
            if options.nan_policy != "skip" or skipped > options.max_nan_skips:
                raise NonFiniteLossError(
                    message
                    + (
                        ""
                        if options.nan_policy != "skip"
                        else f" (more than {options.max_nan_skips} skipped)"
                    )
                    + ". Lower the learning rate, add gradient clipping (optim.grad_clip), or check the data with `frcnn data check`."
                )
            log.warning("%s: step skipped (%d so far)", message, skipped)
            optimizer.zero_grad(set_to_none=True)
            continue
        scaled = loss / options.accumulate
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        if (i + 1) % options.accumulate == 0:
            if scaler is not None:
                scaler.unscale_(optimizer)
            if options.grad_clip:
                torch.nn.utils.clip_grad_norm_(
                    [p for g in optimizer.param_groups for p in g["params"]], options.grad_clip
                )
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
        steps += 1
        images += len(imgs)
        values = {k: float(v.detach()) for k, v in losses.items()}
        for k, v in values.items():
            totals[k] = totals.get(k, 0.0) + v
        if on_step is not None:
            on_step(i, values)
        if should_stop():
            break
    means = {k: v / max(steps, 1) for k, v in totals.items()}
    return EpochStats(means, steps, images, time.perf_counter() - start, skipped, dropped)


@torch.no_grad()
def predict_batches(
    model: nn.Module, batches: Iterable[tuple[list[Tensor], list[dict]]], device: torch.device
) -> list[dict]:
    """Detections per image (numpy, original coordinates) with the targets' ``image_id``."""
    model.eval()
    out = []
    for imgs, targets in batches:
        detections = model([im.to(device) for im in imgs])
        for det, target in zip(detections, targets, strict=True):
            out.append(
                {
                    "image_id": int(target["image_id"]),
                    "boxes": det["boxes"].float().cpu().numpy(),
                    "scores": det["scores"].float().cpu().numpy(),
                    "labels": det["labels"].cpu().numpy(),
                }
            )
    return out
