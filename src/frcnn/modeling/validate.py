"""Input checks with messages that name the image and the box."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import InputError, InputTypeError


def _box_str(box: Tensor) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box.tolist()) + "]"


def check_images(images: Sequence[Tensor], num_channels: int) -> None:
    """Each image must be a float CHW tensor with 1 or ``num_channels`` channels."""
    if isinstance(images, Tensor) and images.dim() == 4:
        raise InputTypeError(
            "images must be a list of CHW tensors, got one 4-D tensor: pass list(batch)"
        )
    if not isinstance(images, (list, tuple)):
        raise InputTypeError(f"images must be a list of CHW tensors, got {type(images).__name__}")
    if len(images) == 0:
        raise InputError("images is an empty list")
    for i, image in enumerate(images):
        if not isinstance(image, Tensor):
            raise InputTypeError(f"image {i}: expected a tensor, got {type(image).__name__}")
        if image.dim() != 3:
            raise InputError(f"image {i}: expected a CHW tensor, got shape {tuple(image.shape)}")
        if not image.is_floating_point():
            raise InputTypeError(
                f"image {i}: expected a float tensor with values in 0..1, got {image.dtype} "
                "(convert with image.float() / 255)"
            )
        if image.shape[0] not in (1, num_channels):
            raise InputError(
                f"image {i}: expected 1 or {num_channels} channels, got shape "
                f"{tuple(image.shape)} (images are CHW, channels first)"
            )
        if image.shape[1] == 0 or image.shape[2] == 0:
            raise InputError(f"image {i}: empty image of shape {tuple(image.shape)}")


def check_targets(
    targets: Sequence[dict[str, Tensor]] | None, num_images: int, num_classes: int
) -> None:
    """Training targets: one dict per image with ``boxes`` FloatTensor[N, 4] xyxy of positive
    width and height, finite, and ``labels`` Int64Tensor[N] in 1..num_classes-1."""
    if targets is None:
        raise InputError("targets are required in training mode (call model.eval() to predict)")
    if len(targets) != num_images:
        raise InputError(f"got {num_images} images but {len(targets)} targets")
    for i, target in enumerate(targets):
        if not isinstance(target, dict):
            raise InputTypeError(f"image {i}: target must be a dict, got {type(target).__name__}")
        for key in ("boxes", "labels"):
            if key not in target:
                raise InputError(f"image {i}: target has no {key!r} (keys: {sorted(target)})")
        boxes, labels = target["boxes"], target["labels"]
        if not isinstance(boxes, Tensor) or not boxes.is_floating_point():
            raise InputTypeError(f"image {i}: boxes must be a float tensor, got {_describe(boxes)}")
        if boxes.dim() != 2 or boxes.shape[1] != 4:
            raise InputError(
                f"image {i}: boxes must have shape [N, 4] (x1, y1, x2, y2), "
                f"got {tuple(boxes.shape)}"
            )
        if not isinstance(labels, Tensor) or labels.dtype != torch.int64:
            raise InputTypeError(
                f"image {i}: labels must be an int64 tensor, got {_describe(labels)}"
            )
        if labels.shape != (boxes.shape[0],):
            raise InputError(
                f"image {i}: {boxes.shape[0]} boxes but labels of shape {tuple(labels.shape)}"
            )
        _check_box_values(i, boxes)
        bad = torch.where((labels < 1) | (labels >= num_classes))[0]
        if bad.numel():
            j = int(bad[0])
            raise InputError(
                f"image {i}: box {j} has label {int(labels[j])}, outside 1..{num_classes - 1} "
                f"(0 is background; the model has {num_classes} classes including it)"
            )


def _check_box_values(i: int, boxes: Tensor) -> None:
    checks = (
        (~torch.isfinite(boxes).all(dim=1), "non-finite coordinates"),
        (boxes[:, 2] <= boxes[:, 0], "zero or negative width"),
        (boxes[:, 3] <= boxes[:, 1], "zero or negative height"),
    )
    for mask, what in checks:
        bad = torch.where(mask)[0]
        if bad.numel():
            j = int(bad[0])
            more = f" ({bad.numel()} boxes in this image)" if bad.numel() > 1 else ""
            raise InputError(f"image {i}: box {j} has {what} {_box_str(boxes[j])}{more}")


def _describe(x: object) -> str:
    return f"{x.dtype} tensor" if isinstance(x, Tensor) else type(x).__name__
