"""The built-in demo: a generated image, a small detector trained on it, its detections.

Until the training pipeline lands this is a single-image fit: it shows the whole detector
(transform, backbone, RPN, RoI heads, losses, postprocess) learning end to end on CPU.
"""

from __future__ import annotations

import logging
import time

import torch
from torch import Tensor

from .detector import FasterRCNN
from .models import build_model

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


def run_demo(steps: int = 200, seed: int = 0) -> list[dict[str, object]]:
    """Generate the image, fit a small detector for ``steps`` steps, return its detections
    (``label``, ``name``, ``score``, ``box``) with score >= 0.5."""
    torch.manual_seed(seed)
    image, target = two_object_image()
    model = build_model("resnet18_fpn", len(CLASS_NAMES) + 1, **DEMO_MODEL)
    start = time.perf_counter()
    fit_one_image(model, image, target, steps)
    log.info("trained %d steps in %.1f s", steps, time.perf_counter() - start)
    with torch.no_grad():
        det = model([image])[0]
    keep = det["scores"] >= 0.5
    return [
        {
            "label": int(label),
            "name": CLASS_NAMES[int(label) - 1],
            "score": round(float(score), 4),
            "box": [round(v, 1) for v in box.tolist()],
        }
        for box, score, label in zip(
            det["boxes"][keep], det["scores"][keep], det["labels"][keep], strict=True
        )
    ]
