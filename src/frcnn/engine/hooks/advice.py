"""Advice from the first batches: a GPU-sized recipe on a CPU learns almost nothing in
minutes; say so with the measured speed and the recipe to use instead."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ...modeling.catalog import starts_from_coco
from .base import Hook

if TYPE_CHECKING:
    from ..state import TrainState

log = logging.getLogger("frcnn")

# What makes a recipe GPU-sized (torchvision's defaults), as (model option, threshold).
GPU_SIZED = (
    ("rpn_post_nms_top_n_train", 2000, "proposals"),
    ("box_batch_size_per_image", 512, "RoIs per image"),
    ("representation_size", 1024, "-wide box head"),
)
MEASURED_BATCHES = 3


def gpu_sized(config: dict) -> list[str]:
    """The GPU-sized settings of a model configuration, in words (empty when none)."""
    return [
        f"{config[key]}{'' if word.startswith('-') else ' '}{word}"
        for key, limit, word in GPU_SIZED
        if config.get(key, 0) >= limit
    ]


class CpuRecipeAdvice(Hook):
    """After the first few batches of a CPU run with a GPU-sized recipe, one warning with
    the measured images per second and ``--config cpu-fast``."""

    priority = 35

    def __init__(self) -> None:
        self.images = 0
        self.start: float | None = None
        self.done = False

    def before_epoch(self, state: TrainState) -> None:
        if self.start is None:
            self.start = state.clock()

    def after_step(self, state: TrainState) -> None:
        if self.done or state.device.type != "cpu" or not state.info.is_main:
            return
        self.images += state.step_images
        if state.batch_in_epoch + 1 < MEASURED_BATCHES or self.start is None:
            return
        self.done = True
        config = state.trainer.raw_model.config
        coco = starts_from_coco(state.trainer.cfg.model.weights)
        heavy = gpu_sized(config)
        if heavy and not (coco and config.get("name") == CPU_COCO_MODEL):
            speed = self.images / max(state.clock() - self.start, 1e-9)
            log.warning(
                "warning: a GPU-sized recipe (%s) on a CPU: %.1f images/s, so minutes of "
                "training learn little; %s",
                ", ".join(heavy),
                speed,
                instead(coco),
            )


def instead(coco: bool) -> str:
    """What to train on a CPU: from COCO weights, the COCO model sized for a CPU; else the
    CPU recipe."""
    if coco:
        return (
            f"`--model {CPU_COCO_MODEL}` is the COCO-trained model sized for a CPU (320 px, "
            "fewer proposals)"
        )
    return "`--config cpu-fast` is sized for a CPU (see frcnn recipes)"


# The COCO-trained model to fine-tune on a CPU.
CPU_COCO_MODEL = "mobilenet_v3_large_320_fpn"
