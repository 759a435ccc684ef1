"""The pictures of ``frcnn explain``: one file per stage, each a row of captioned panels on
the model's input image, and the counts each caption states (for the page and the tests)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..data.records import label_name
from ..evaluation.plots import colour, draw_boxes, grid, panel

CELL = 360  # pixels per panel
DRAWN = 100  # most boxes drawn in one panel (the strongest)
GREEN, RED, YELLOW, BLUE, WHITE = (
    (40, 170, 60),
    (220, 50, 50),
    (230, 190, 20),
    (40, 90, 230),
    (255, 255, 255),
)


def to_image(tensor: Tensor) -> Image.Image:
    """A CHW tensor in 0..1 as an RGB picture."""
    array = (tensor.detach().float().clamp(0, 1) * 255).byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def heat(base: Image.Image, values: Tensor, alpha: float = 0.6) -> Image.Image:
    """``values`` (H x W, any range) stretched to 0..1, coloured (inferno) and laid over
    ``base`` at its size."""
    from matplotlib import colormaps

    v = values.detach().float().cpu()
    v = (v - v.min()) / (v.max() - v.min()).clamp_min(1e-12)
    rgb = (colormaps["inferno"](v.numpy())[..., :3] * 255).astype(np.uint8)
    layer = Image.fromarray(rgb).resize(base.size, Image.Resampling.BILINEAR)
    return Image.blend(base.convert("RGB"), layer, alpha)


def boxes_panel(
    base: Image.Image,
    boxes: Tensor | np.ndarray,
    colours: Sequence[tuple[int, int, int]],
    caption: str,
    texts: Sequence[str] | None = None,
) -> Image.Image:
    """``base`` in a captioned panel with ``boxes`` (base's pixels) outlined."""
    boxes = np.asarray(torch.as_tensor(boxes).detach().cpu().float().numpy()).reshape(-1, 4)
    texts = list(texts) if texts is not None else [""] * len(boxes)

    def put(scaled: Image.Image, s: float) -> Image.Image:
        return draw_boxes(scaled, boxes * s, colours, texts, width=1)

    return panel(base, put, caption, CELL)


def save_row(panels: Sequence[Image.Image], out: Path) -> Path:
    grid(panels, CELL, out)
    return out


def strongest(scores: Tensor, n: int = DRAWN) -> Tensor:
    """Indices of the ``n`` highest scores, highest first."""
    return torch.argsort(scores, descending=True)[:n]


def detection_panel(
    base: Image.Image, found: dict, names: Sequence[str] | None, caption: str, drawn: int
) -> Image.Image:
    """The ``drawn`` strongest of ``found`` (boxes, scores, labels), named and scored."""
    keep = strongest(found["scores"], drawn)
    labels = found["labels"][keep].tolist()
    texts = [
        f"{label_name(names, lab)} {float(s):.2f}"
        for lab, s in zip(labels, found["scores"][keep].tolist(), strict=True)
    ]
    return boxes_panel(base, found["boxes"][keep], [colour(lab) for lab in labels], caption, texts)
