"""``frcnn explain``: one image through a model file, every stage drawn on one page."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import InputError
from .page import write_page
from .stages import Stage, draw_stages
from .trace import Trace, trace_stages


def read_target(labels: str | os.PathLike, image: Path, class_names: list | None) -> dict:
    """The ground truth of ``image`` from the dataset ``labels`` (any format ``frcnn``
    reads; the record whose file name is the image's), as the model's labels.

    Raises:
        ValueError: no record of that name, or classes that differ from the model's.
    """
    from ..data.sources import read_dataset

    dataset = read_dataset(labels)
    found = [r for r in dataset.images if Path(r.file_name).name == image.name]
    if not found:
        raise InputError(f"{labels}: no annotations for an image named {image.name}")
    if class_names and dataset.class_names != class_names:
        raise InputError(
            f"{labels}: classes {dataset.class_names} differ from the model's {class_names}"
        )
    record = found[0]
    keep = ~(record.iscrowd | record.ignore)
    return {
        "boxes": torch.as_tensor(record.boxes[keep], dtype=torch.float32).reshape(-1, 4),
        "labels": torch.as_tensor(record.labels[keep], dtype=torch.int64),
    }


def explain(
    weights: str | os.PathLike,
    image: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    out: str | os.PathLike = "runs/explain",
) -> tuple[Path, list[Stage], Trace]:
    """Draw every stage of the model in ``weights`` on ``image`` into ``out`` (a picture per
    stage, ``explain.html`` holding them, ``explain.json`` with their counts). With
    ``labels`` (a dataset holding the image's annotations) the anchor labels and the RoI
    sampling are drawn too. Returns the page, the stages and the traced tensors."""
    from ..data.images import read_image
    from ..io.model_file import load_model

    image, out = Path(image), Path(out)
    model = load_model(weights, "cpu").eval()
    tensor = read_image(image)
    target = read_target(labels, image, model.class_names) if labels is not None else None
    trace = trace_stages(model, tensor, target)
    stages = draw_stages(trace, out)
    lines = [
        f"model {weights}: {model.config.get('name', '?')}, classes {model.class_names}",
        f"image {image}: {tensor.shape[-1]}x{tensor.shape[-2]} px"
        + (f", {len(target['boxes'])} annotated objects from {labels}" if target else ""),
    ]
    page = write_page(stages, out, f"frcnn explain: {image.name}", lines)
    return page, stages, trace
