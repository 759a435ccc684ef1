"""``frcnn pretrain-backbone``: train a registered backbone as an image classifier and keep
its weights for ``pretrained_backbone: FILE``.

Defaults are a classic from-scratch ImageNet-style recipe: SGD with learning rate 0.1,
momentum 0.9, weight decay 5e-4 (not on norms and biases: the trainer's parameter groups),
and step decay (x0.1 every third of the run), after a linear warm-up over the first
epoch (lr 0.1 on a network initialised at random diverges without one).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..data.images import load_image
from ..engine.device import resolve_device
from ..engine.distributed import DistInfo
from ..engine.loop import NonFiniteLossError
from ..engine.optim import LRSchedule, build_optimizer
from ..engine.run_folder import run_folder, seed_everything, setup_logging
from ..errors import InputError
from ..io.atomic import atomic_write, atomic_write_csv, atomic_write_text
from .classifier import BackboneClassifier
from .folder import read_image_folder

log = logging.getLogger("frcnn")


@dataclass
class PretrainConfig:
    """Settings of :func:`pretrain_backbone` (see ``frcnn pretrain-backbone --help``)."""

    data: str
    backbone: str
    epochs: int = 30
    batch_size: int = 32
    img_size: int = 224
    lr: float = 0.1
    optimizer: str = "sgd"  # or adamw (then give lr, e.g. 0.001; momentum is unused)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_step: int | None = None  # epochs between x gamma decays (None: a third of the run)
    gamma: float = 0.1
    val_split: float = 0.2
    out: str = "runs/pretrain"
    device: str = "auto"
    workers: int = 2
    seed: int = 0

    def validate(self) -> None:
        """Raises ValueError naming the first setting out of range."""
        for key in ("epochs", "batch_size", "img_size"):
            if getattr(self, key) < 1:
                raise InputError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.optimizer not in ("sgd", "adamw"):
            raise InputError(f"optimizer must be sgd or adamw, got {self.optimizer!r}")
        if self.lr <= 0 or not 0 < self.gamma <= 1 or not 0 <= self.val_split < 1:
            raise InputError("lr must be > 0, gamma in (0, 1], val_split in [0, 1)")


@dataclass
class PretrainResult:
    """Where the run went and how well the best epoch classified the validation images."""

    run: Path
    weights: Path
    accuracy: float
    classes: list[str]


class _Images(Dataset):
    """``(image tensor, label)`` per ``(path, label)``; ``None`` for an unreadable image
    (left out of its batch and counted)."""

    def __init__(self, pairs: list[tuple[Path, int]], transform) -> None:
        self.pairs, self.transform = pairs, transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        path, label = self.pairs[i]
        try:
            image = load_image(path)
        except (OSError, ValueError):
            return None
        image = self.transform(image=image)["image"]
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), label


def _collate(batch: list) -> tuple[torch.Tensor, torch.Tensor, int]:
    kept = [b for b in batch if b is not None]
    if not kept:
        return torch.zeros(0, 3, 1, 1), torch.zeros(0, dtype=torch.int64), len(batch)
    images = torch.stack([b[0] for b in kept])
    return images, torch.tensor([b[1] for b in kept]), len(batch) - len(kept)


def _transforms(size: int):
    import albumentations as A

    normalise = A.Normalize()  # ImageNet mean and std, as the detector's transform
    train = A.Compose(
        [A.RandomResizedCrop(size=(size, size), scale=(0.6, 1.0)), A.HorizontalFlip(), normalise]
    )
    return train, A.Compose([A.Resize(size, size), normalise])


def pretrain_schedule(cfg: PretrainConfig, steps_per_epoch: int) -> LRSchedule:
    """The learning-rate multiplier per optimiser step: linear warm-up from 1/10 over the
    first epoch (runs of two or more epochs), then x ``gamma`` every ``lr_step`` epochs (a
    third of the run by default); the trainer's :class:`~frcnn.engine.optim.LRSchedule`."""
    steps_per_epoch = max(1, steps_per_epoch)
    return LRSchedule(
        total_steps=cfg.epochs * steps_per_epoch,
        epochs=cfg.epochs,
        policy="step",
        warmup_steps=steps_per_epoch if cfg.epochs > 1 else 0,
        warmup_factor=0.1,
        step_size=float(cfg.lr_step or max(1, math.ceil(cfg.epochs / 3))),
        gamma=cfg.gamma,
    )


def lr_at(cfg: PretrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """Learning rate at ``step`` of ``epoch`` (0-based) by :func:`pretrain_schedule`."""
    return cfg.lr * pretrain_schedule(cfg, steps_per_epoch)(epoch * steps_per_epoch + step)


def pretrain_backbone(cfg: PretrainConfig) -> PretrainResult:
    """Train ``cfg.backbone`` as a classifier of ``cfg.data`` (class-per-subfolder) into a
    run folder: ``results.csv`` and ``results.png`` (loss and accuracy per epoch),
    ``log.txt``, ``config.yaml``, and ``weights/best.safetensors`` (the backbone at the
    best validation accuracy) and ``weights/last.safetensors``: backbone state dicts that
    ``pretrained_backbone: FILE`` loads."""
    cfg.validate()
    splits = read_image_folder(cfg.data, cfg.val_split, cfg.seed)
    out = run_folder(cfg.out, resume=False)
    (out / "weights").mkdir(parents=True, exist_ok=True)
    setup_logging(out, DistInfo())
    seed_everything(cfg.seed, deterministic=False)
    atomic_write_text(out / "config.yaml", _yaml(asdict(cfg)))
    device = resolve_device(cfg.device)
    model = BackboneClassifier(cfg.backbone, len(splits.classes)).to(device)
    train_tf, val_tf = _transforms(cfg.img_size)
    train_loader = _loader(cfg, splits.train, train_tf, shuffle=True)
    val_loader = _loader(cfg, splits.val, val_tf, shuffle=False) if splits.val else None
    log.info(
        "pretraining %s as a classifier of %d classes: %d training, %d validation images%s, "
        "%d epochs on %s; run folder %s",
        cfg.backbone,
        len(splits.classes),
        len(splits.train),
        len(splits.val),
        " (held out)" if splits.held_out else "",
        cfg.epochs,
        device,
        out,
    )
    best = _fit(model, (train_loader, val_loader), cfg, out, splits.classes, device)
    _plot(out)
    weights = out / "weights" / "best.safetensors"
    log.info(
        "done: best %s %.4f; backbone weights %s (use: frcnn train --model MODEL "
        "model.args.pretrained_backbone=%s)",
        "accuracy" if val_loader else "training accuracy",
        best,
        weights,
        weights,
    )
    return PretrainResult(out, weights, best, splits.classes)


def _loader(cfg: PretrainConfig, pairs: list, transform, shuffle: bool) -> DataLoader:
    return DataLoader(
        _Images(pairs, transform),
        cfg.batch_size,
        shuffle=shuffle,
        num_workers=cfg.workers,
        collate_fn=_collate,
        drop_last=shuffle and len(pairs) > cfg.batch_size,
    )


def _fit(model, loaders, cfg: PretrainConfig, out: Path, classes: list[str], device) -> float:
    """The epochs: train, validate, write the row and the weights; the best score."""
    train_loader, val_loader = loaders
    optimizer = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.momentum, False, cfg.weight_decay)
    schedule = pretrain_schedule(cfg, len(train_loader))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    rows, best = [], -1.0
    for epoch in range(cfg.epochs):
        start = time.perf_counter()
        row = _train_epoch(model, train_loader, (optimizer, scheduler), cfg, epoch, device)
        row.update(_evaluate(model, val_loader, device))
        rows.append(row)
        _write_csv(out / "results.csv", rows)
        _save(model, out / "weights" / "last.safetensors", cfg, classes, row)
        score = row["accuracy"] if val_loader else row["train_accuracy"]
        if score > best:
            best = score
            _save(model, out / "weights" / "best.safetensors", cfg, classes, row)
        log.info(
            "epoch %d/%d  loss %.4f  val_loss %s  accuracy %s  lr %.3g  (%.0f s)%s",
            epoch + 1,
            cfg.epochs,
            row["loss"],
            _fmt(row["val_loss"]),
            _fmt(row["accuracy"]),
            row["lr"],
            time.perf_counter() - start,
            f"  {row['skipped']} unreadable images skipped" if row["skipped"] else "",
        )
    return best


def _train_epoch(model, loader, optim: tuple, cfg: PretrainConfig, epoch: int, device) -> dict:
    """One epoch; ``optim`` is the optimiser and its per-step learning-rate scheduler."""
    optimizer, scheduler = optim
    model.train()
    total, correct, loss_sum, skipped = 0, 0, 0.0, 0
    lr = optimizer.param_groups[0]["lr"]
    for step, (images, labels, bad) in enumerate(loader):
        skipped += bad
        if not len(labels):
            scheduler.step()  # the schedule follows the batch count, as lr_at says
            continue
        lr = optimizer.param_groups[0]["lr"]
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"pretrain-backbone: the loss is not finite at epoch {epoch + 1} step {step + 1}; "
                f"lower the learning rate (--lr, now {cfg.lr})"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        loss_sum += loss.item() * len(labels)
    return {
        "epoch": epoch + 1,  # counted from 1 where people read it, as train's results.csv
        "loss": loss_sum / max(total, 1),
        "train_accuracy": correct / max(total, 1),
        "lr": lr,
        "skipped": skipped,
    }


@torch.no_grad()
def _evaluate(model, loader, device) -> dict:
    """Validation loss and accuracy (NaN without validation images)."""
    if loader is None:
        return {"val_loss": math.nan, "accuracy": math.nan}
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    for images, labels, _ in loader:
        if not len(labels):
            continue
        logits = model(images.to(device))
        labels = labels.to(device)
        loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(1) == labels).sum())
        total += len(labels)
    return {"val_loss": loss_sum / max(total, 1), "accuracy": correct / max(total, 1)}


def _save(model: BackboneClassifier, path: Path, cfg: PretrainConfig, classes, row: dict) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.body.state_dict().items()}
    metadata = {
        "frcnn_kind": "backbone",
        "backbone": cfg.backbone,
        "classes": json.dumps(classes),
        "epoch": str(row["epoch"]),
        "accuracy": str(row["accuracy"]),
        "img_size": str(cfg.img_size),
    }
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))


def _write_csv(path: Path, rows: list[dict]) -> None:
    fields = ["epoch", "loss", "val_loss", "train_accuracy", "accuracy", "lr", "skipped"]
    blanked = [{k: ("" if _nan(r[k]) else r[k]) for k in fields} for r in rows]
    atomic_write_csv(path, fields, blanked)


def _plot(out: Path) -> None:
    from ..evaluation.plots import plot_results

    plot_results(out / "results.csv", out / "results.png")


def _yaml(values: dict) -> str:
    import yaml

    return yaml.safe_dump(values, sort_keys=False)


def _nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _fmt(value: float) -> str:
    return "-" if _nan(value) else f"{value:.4f}"
