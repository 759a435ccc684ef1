"""Model files of a run: ``last``, ``best`` and the top-k ``epoch<N>`` files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...io.atomic import atomic_link
from ...io.model_file import save_model
from ..state import NEW_BEST, WEIGHTS_SAVED, Event
from .base import Hook

if TYPE_CHECKING:
    from ..state import TrainState


class TopK:
    """The k best checkpoints by score, as files ``epoch<N>.safetensors`` (N counted from 1,
    as in ``results.csv``), each a link to the epoch's ``last.safetensors`` (no copy).
    ``entries`` hold (score, epoch counted from 0)."""

    def __init__(self, k: int, folder: Path, entries: list | None = None) -> None:
        self.k = k
        self.folder = folder
        self.entries: list[tuple[float, int]] = [tuple(e) for e in (entries or [])]

    def path(self, epoch: int) -> Path:
        return self.folder / f"epoch{epoch + 1}.safetensors"

    def offer(self, score: float, epoch: int, weights: Path) -> bool:
        """Keep the model file ``weights`` when it is among the k best so far; drop the one
        it displaces."""
        if self.k <= 0:
            return False
        if len(self.entries) >= self.k and score <= min(s for s, _ in self.entries):
            return False
        atomic_link(weights, self.path(epoch))
        self.entries.append((score, epoch))
        self.entries.sort(key=lambda e: (-e[0], e[1]))
        for _, dropped in self.entries[self.k :]:
            self.path(dropped).unlink(missing_ok=True)
        self.entries = self.entries[: self.k]
        return True


class Checkpointer(Hook):
    """After every epoch, ``last.safetensors``; after an evaluation, ``best.safetensors``
    when the score improved and the top-k files, as links to ``last.safetensors``: the
    weights are written once per epoch. Writes on the main process only; announces
    ``weights_saved`` and ``new_best`` (:mod:`frcnn.engine.state`)."""

    priority = 60
    runs_after = ("EvalSchedule",)

    def __init__(self, folder: Path, top_k: int) -> None:
        self.folder = folder
        self.topk = TopK(top_k, folder)
        self.best = -math.inf
        self.best_epoch: int | None = None

    def before_train(self, state: TrainState) -> None:
        if self.best_epoch is not None:  # resumed: the best epoch is known
            state.events.append(Event(NEW_BEST, self.best_epoch, {"score": self.best}))

    def after_epoch(self, state: TrainState) -> None:
        if not state.info.is_main:
            return
        with state.trainer.averaged() as model:  # the moving average with optim.ema
            last = save_model(model, self.folder / "last.safetensors")
        state.emit(WEIGHTS_SAVED, path=last)
        result = state.result
        if result is None or not getattr(result, "measurable", True):
            return  # nothing to rank by (e.g. validation data without boxes)
        self.topk.offer(result.score, state.epoch, last)
        if result.score > self.best:
            self.best, self.best_epoch = result.score, state.epoch
            atomic_link(last, self.folder / "best.safetensors")
            state.emit(NEW_BEST, score=self.best)

    def state_dict(self) -> dict[str, Any]:
        return {
            "topk": [list(e) for e in self.topk.entries],
            "best": self.best,
            "best_epoch": self.best_epoch,
            "file_numbers": "from 1",
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.topk.entries = [tuple(e) for e in state["topk"]]
        self.best, self.best_epoch = float(state["best"]), state["best_epoch"]
        if state.get("file_numbers") != "from 1":  # earlier runs named epoch files from 0
            for _, epoch in sorted(self.topk.entries, key=lambda e: -e[1]):
                old, new = self.folder / f"epoch{epoch}.safetensors", self.topk.path(epoch)
                if old.is_file() and not new.exists():
                    old.rename(new)
