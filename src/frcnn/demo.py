"""The built-in demo: generate the synthetic dataset, train a detector sized for a laptop
CPU within a time budget, evaluate it on held-out images, and draw its predictions.

Also the one-image fit used by the tests to show the detector learns at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor

from .modeling.detector import FasterRCNN

log = logging.getLogger(__name__)

CLASS_NAMES = ["rectangle", "disc"]

# A detector small enough to train in seconds on a laptop CPU.
DEMO_MODEL = dict(
    min_size=128,
    max_size=128,
    fpn_channels=32,
    representation_size=64,
    norm="gn",
    rpn_pre_nms_top_n_train=200,
    rpn_post_nms_top_n_train=100,
    rpn_pre_nms_top_n_test=100,
    rpn_post_nms_top_n_test=50,
    box_batch_size_per_image=64,
    anchor_sizes=((16,), (32,), (64,), (128,), (256,)),
)


def two_object_image() -> tuple[Tensor, dict[str, Tensor]]:
    """A 128 x 128 grey image with a red rectangle (class 1) and a blue disc (class 2)."""
    img = torch.full((3, 128, 128), 0.5)
    img[:, 20:60, 15:70] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]
    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    disc = ((yy - 85) ** 2 + (xx - 90) ** 2) <= 22**2
    img[:, disc] = torch.tensor([0.1, 0.2, 0.9])[:, None]
    target = {
        "boxes": torch.tensor([[15.0, 20.0, 70.0, 60.0], [68.0, 63.0, 113.0, 108.0]]),
        "labels": torch.tensor([1, 2]),
    }
    return img, target


def fit_one_image(
    model: FasterRCNN, image: Tensor, target: dict[str, Tensor], steps: int, lr: float = 3e-4
) -> dict[str, float]:
    """Train ``model`` on one image with AdamW and a cosine schedule; the last losses."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    last: dict[str, float] = {}
    for step in range(steps):
        losses = model([image], [target])
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        schedule.step()
        last = {k: float(v.detach()) for k, v in losses.items()}
        if step % 50 == 0 or step == steps - 1:
            log.info("step %d/%d loss %.4f", step + 1, steps, float(total.detach()))
    model.eval()
    return last


# The demo's recipe, chosen by measurement on a 2-core CPU (benchmarks/demo_quality.py).
# The demo trains with the shipped recipe of this name (src/frcnn/recipes/cpu-fast.yaml).
DEMO_RECIPE = "cpu-fast"


def run_demo_training(
    out: str | Path = "runs/demo",
    minutes: float = 5.0,
    n_train: int = 800,
    n_val: int = 100,
    overrides: list[str] | None = None,
    seed: int = 0,
):
    """Synthesise data, train with :data:`DEMO_RECIPE` for ``minutes``, evaluate on held-out
    images and draw predictions; returns the :class:`~frcnn.trainer.TrainResult`."""
    from .config import load_config
    from .data.synth import write_synth
    from .engine.trainer import train

    out = Path(out)
    data = out / "data"
    if not (data / "train" / "annotations.json").exists():
        log.info("generating %d training and %d validation images in %s", n_train, n_val, data)
        write_synth(data / "train", n_train, 256, seed=seed)
        write_synth(data / "val", n_val, 256, seed=seed + 1)
    values = {
        "data.train": str(data / "train"),
        "data.val": str(data / "val"),
        "run.out": str(out / "train"),
        "schedule.time_budget": minutes,
        "run.seed": seed,
    }
    cfg = load_config(DEMO_RECIPE, list(overrides or []), **values)
    return train(cfg)
