"""The end of a run: the best model's evaluation, ``metrics.json`` and the plots."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ...data.images import to_pil
from ...data.loader import readable_images
from ...io.model_file import load_model
from ..distributed import broadcast
from ..state import FINAL_METRICS
from .base import Hook

if TYPE_CHECKING:
    from ...evaluation.report import EvalResult
    from ..state import TrainState

log = logging.getLogger("frcnn")


class FinalReport(Hook):
    """After training: evaluates ``best.safetensors`` when it is not the last epoch's model,
    writes ``metrics.json``, ``per_class.csv`` and the plots, and announces
    ``final_metrics``."""

    priority = 90
    runs_after = ("EvalSchedule", "Checkpointer")

    def after_train(self, state: TrainState) -> None:
        result = state.latest_result
        best_epoch = broadcast(state.best_epoch, state.info)  # tracked on rank 0
        best = state.weights / "best.safetensors"
        if best_epoch is not None and best_epoch != state.epoch:
            # Every rank takes part: evaluation gathers predictions across ranks.
            result = state.trainer.evaluate(load_model(best, state.device))
        if state.info.is_main and result is not None:
            state.emit(FINAL_METRICS, metrics=result.to_json())
            self._plots(state, result)
            self._report(state, result)
        if state.info.is_main:
            log.info("done in %.1f min; results in %s", state.elapsed() / 60, state.out)

    def _plots(self, state: TrainState, result: EvalResult) -> None:
        from ...evaluation import plots

        out = state.out
        plots.plot_results(out / "results.csv", out / "results.png")
        plots.plot_labels(state.train_data, out / "labels.png")
        # The first validation images as they were scored: the evaluated model's own
        # predictions (tiled for a tiled run), above the run's threshold.
        val, exif, conf = state.val_data, state.cfg.data.exif, result.conf
        readable = readable_images(val.images[:8], "val_predictions.jpg", exif)
        sample = [val.images[i] for i, _ in readable]
        empty = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}
        found = [result.predictions.get(int(r.image_id), empty) for r in sample]
        keep = [{k: v[p["scores"] >= conf] for k, v in p.items()} for p in found]
        images = [to_pil(image) for _, image in readable]
        if not images:
            return
        plots.prediction_grid(
            images,
            [(r.boxes, r.labels) for r in sample],
            keep,
            val.class_names,
            out / "val_predictions.jpg",
            conf=conf,
        )

    def _report(self, state: TrainState, result: EvalResult) -> None:
        """``metrics.json``, the tables, the evaluation's plots, worst images and
        ``report.html`` (with the run's curves and the data checks)."""
        from ...evaluation.write import write_evaluation

        cfg = state.cfg
        title = f"frcnn run {state.out.name}: {cfg.model.name} on {cfg.data.train}"
        write_evaluation(
            result,
            state.val_data,
            state.out,
            title,
            state.data_lines,
            state.trainer.eval_max_dets(),
            cfg.data.exif,
            cfg.eval.worst_images,
        )
