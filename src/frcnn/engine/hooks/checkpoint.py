"""Model files of a run: ``last``, ``best`` and the top-k ``epoch<N>`` files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...io.model_file import save_model
from .base import Hook

if TYPE_CHECKING:
    from ...modeling.detector import FasterRCNN
    from ..trainer import Trainer


class TopK:
    """The k best checkpoints by score, as files ``epoch<N>.safetensors`` (N as in
    ``results.csv``)."""

    def __init__(self, k: int, folder: Path, entries: list | None = None) -> None:
        self.k = k
        self.folder = folder
        self.entries: list[tuple[float, int]] = [tuple(e) for e in (entries or [])]

    def path(self, epoch: int) -> Path:
        return self.folder / f"epoch{epoch}.safetensors"

    def offer(self, score: float, epoch: int, model: FasterRCNN) -> bool:
        """Keep ``model`` when it is among the k best so far; drop the one it displaces."""
        if self.k <= 0:
            return False
        if len(self.entries) >= self.k and score <= min(s for s, _ in self.entries):
            return False
        save_model(model, self.path(epoch))
        self.entries.append((score, epoch))
        self.entries.sort(key=lambda e: (-e[0], e[1]))
        for _, dropped in self.entries[self.k :]:
            self.path(dropped).unlink(missing_ok=True)
        self.entries = self.entries[: self.k]
        return True


class Checkpointer(Hook):
    """After every epoch, ``last.safetensors``; after an evaluation, ``best.safetensors``
    when the score improved and the top-k files. Writes on the main process only; sets
    ``trainer.best_epoch``."""

    def __init__(self, folder: Path, top_k: int) -> None:
        self.folder = folder
        self.topk = TopK(top_k, folder)
        self.best = -math.inf
        self.best_epoch: int | None = None

    def before_train(self, trainer: Trainer) -> None:
        trainer.best_epoch = self.best_epoch

    def after_epoch(self, trainer: Trainer) -> None:
        if not trainer.info.is_main:
            return
        save_model(trainer.raw_model, self.folder / "last.safetensors")
        result = trainer.result
        if result is None or not getattr(result, "measurable", True):
            return  # nothing to rank by (e.g. validation data without boxes)
        self.topk.offer(result.score, trainer.epoch, trainer.raw_model)
        if result.score > self.best:
            self.best, self.best_epoch = result.score, trainer.epoch
            save_model(trainer.raw_model, self.folder / "best.safetensors")
        trainer.best_epoch = self.best_epoch

    def state_dict(self) -> dict[str, Any]:
        return {
            "topk": [list(e) for e in self.topk.entries],
            "best": self.best,
            "best_epoch": self.best_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.topk.entries = [tuple(e) for e in state["topk"]]
        self.best, self.best_epoch = float(state["best"]), state["best_epoch"]
