"""Image normalisation, resizing and batching; boxes mapped to and from the resized images."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def scale_boxes(boxes: Tensor, from_size: tuple[int, int], to_size: tuple[int, int]) -> Tensor:
    """Map xyxy boxes from an image of ``from_size`` (h, w) onto one of ``to_size``."""
    ratio_h = torch.tensor(to_size[0], dtype=torch.float32, device=boxes.device) / torch.tensor(
        from_size[0], dtype=torch.float32, device=boxes.device
    )
    ratio_w = torch.tensor(to_size[1], dtype=torch.float32, device=boxes.device) / torch.tensor(
        from_size[1], dtype=torch.float32, device=boxes.device
    )
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack((x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h), dim=-1)


def _min(a: object, b: object) -> object:
    """min of two sizes: ints, torch.export's symbolic ints (no branch on the size), or the
    0-d tensors torch.jit.trace gives."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return torch.minimum(torch.as_tensor(a), torch.as_tensor(b))
    return torch.sym_min(a, b)


def _max(a: object, b: object) -> object:
    """max of two sizes, as :func:`_min`."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return torch.maximum(torch.as_tensor(a), torch.as_tensor(b))
    return torch.sym_max(a, b)


class ImageTransform(nn.Module):
    """Normalise, resize and pad a list of images into one batch tensor.

    Two resize policies:

    - keep aspect ratio (torchvision's): scale so the short side is ``min_size`` unless the
      long side would then exceed ``max_size``; in training ``min_size`` may be a tuple, one
      value drawn per image (multi-scale training).
    - fixed size: every image is stretched to ``fixed_size`` = (height, width).

    The batch is zero-padded (after normalisation) at the bottom/right to a multiple of
    ``size_divisible``.

    Args:
        min_size: short-side target, or candidates drawn from in training.
        max_size: long-side cap.
        image_mean, image_std: per-channel normalisation for inputs in 0..1.
        size_divisible: padded batch sides are multiples of this.
        fixed_size: if given, ``(height, width)`` every image is resized to.
    """

    def __init__(
        self,
        min_size: int | Sequence[int] = 800,
        max_size: int = 1333,
        image_mean: Sequence[float] = (0.485, 0.456, 0.406),
        image_std: Sequence[float] = (0.229, 0.224, 0.225),
        size_divisible: int = 32,
        fixed_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.min_size = (min_size,) if isinstance(min_size, int) else tuple(min_size)
        self.max_size = max_size
        self.size_divisible = size_divisible
        self.fixed_size = tuple(fixed_size) if fixed_size is not None else None
        self.register_buffer("mean", torch.tensor(image_mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(image_std).view(-1, 1, 1), persistent=False)

    def resize(self, image: Tensor) -> Tensor:
        """Resize one CHW image by the configured policy."""
        if self.fixed_size is not None:
            return F.interpolate(
                image[None], size=self.fixed_size, mode="bilinear", align_corners=False
            )[0]
        # Training draws a short side per image (torch's RNG, so seeding covers it);
        # evaluation uses the last candidate.
        if self.training:
            short = self.min_size[int(torch.randint(len(self.min_size), ()).item())]
        else:
            short = self.min_size[-1]
        h, w = image.shape[-2:]
        # sym_min/sym_max: plain min/max on ints, and no branch on the size when exported.
        scale = _min(short / _min(h, w), self.max_size / _max(h, w))
        # recompute_scale_factor=True makes the output size floor(side * scale) and the
        # sampling grid follow that size, matching torchvision's reference transform.
        return F.interpolate(
            image[None],
            scale_factor=scale,
            mode="bilinear",
            recompute_scale_factor=True,
            align_corners=False,
        )[0]

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of the batch an image of this size alone becomes in eval
        mode: resized by the policy, then padded to ``size_divisible``. Images of equal
        padded size batch together without padding each other (same as one at a time)."""
        if self.fixed_size is not None:
            h, w = self.fixed_size
        else:
            # The same floats as resize(): F.interpolate's output side is floor(side * scale).
            scale = min(self.min_size[-1] / min(height, width), self.max_size / max(height, width))
            h, w = math.floor(height * scale), math.floor(width * scale)
        d = self.size_divisible
        return (h + d - 1) // d * d, (w + d - 1) // d * d

    def forward(
        self, images: Sequence[Tensor], targets: Sequence[dict[str, Tensor]] | None = None
    ) -> tuple[Tensor, list[tuple[int, int]], list[dict[str, Tensor]] | None]:
        """Prepare a batch.

        Args:
            images: CHW float tensors in 0..1 of any sizes (one channel is replicated to the
                number of normalisation channels).
            targets: optional per-image dicts whose ``boxes`` are xyxy pixels of the input
                image; returned as new dicts with boxes in resized-image pixels (the
                caller's dicts are not modified).

        Returns:
            ``(batch, image_sizes, targets)``: FloatTensor[N, C, H, W] padded batch, the
            ``(height, width)`` of each resized image, and the resized targets.
        """
        resized = []
        out_targets = [] if targets is not None else None
        for i, image in enumerate(images):
            if image.shape[0] == 1 and self.mean.shape[0] != 1:
                image = image.expand(self.mean.shape[0], -1, -1)
            mean = self.mean.to(image)
            std = self.std.to(image)
            image = self.resize((image - mean) / std)
            if targets is not None:
                target = dict(targets[i])
                target["boxes"] = scale_boxes(
                    target["boxes"], tuple(images[i].shape[-2:]), tuple(image.shape[-2:])
                )
                out_targets.append(target)
            resized.append(image)
        image_sizes = [(im.shape[-2], im.shape[-1]) for im in resized]  # SymInts when exported
        return self.batch(resized), image_sizes, out_targets

    def batch(self, images: Sequence[Tensor]) -> Tensor:
        """Zero-pad images to a common size, rounded up to ``size_divisible``."""
        d = self.size_divisible
        height = functools.reduce(_max, [im.shape[-2] for im in images])
        width = functools.reduce(_max, [im.shape[-1] for im in images])
        height, width = (height + d - 1) // d * d, (width + d - 1) // d * d
        return torch.stack(
            [F.pad(im, (0, width - im.shape[-1], 0, height - im.shape[-2])) for im in images]
        )

    @staticmethod
    def postprocess(
        detections: list[dict[str, Tensor]],
        image_sizes: Sequence[tuple[int, int]],
        original_sizes: Sequence[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """Map each image's detected boxes from the resized image back to the original."""
        for det, size, original in zip(detections, image_sizes, original_sizes, strict=True):
            det["boxes"] = scale_boxes(det["boxes"], size, original)
        return detections
