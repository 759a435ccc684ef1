"""Anchor boxes for every location of every pyramid level."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ...errors import InputError


class AnchorGenerator(nn.Module):
    """Anchors of several sizes and aspect ratios at each feature-map location.

    Level ``l`` gets ``len(sizes[l]) * len(aspect_ratios[l])`` anchors per location, ordered
    ratio-major (all sizes of the first ratio, then the next ratio), centred on the
    location's top-left pixel ``(x * stride, y * stride)``. An anchor of size ``s`` and
    ratio ``r = h / w`` has ``w = s / sqrt(r)`` and ``h = s * sqrt(r)``, rounded to whole
    pixels.

    Args:
        sizes: per level, the anchor sizes (square root of area) in input pixels.
        aspect_ratios: per level, the height/width ratios.
    """

    def __init__(
        self,
        sizes: Sequence[Sequence[float]] = ((32,), (64,), (128,), (256,), (512,)),
        aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),) * 5,
    ) -> None:
        super().__init__()
        if len(sizes) != len(aspect_ratios):
            raise InputError(
                f"AnchorGenerator: {len(sizes)} levels of sizes but "
                f"{len(aspect_ratios)} levels of aspect ratios"
            )
        self.sizes = [tuple(float(s) for s in level) for level in sizes]
        self.aspect_ratios = [tuple(float(r) for r in level) for level in aspect_ratios]
        self._cache: dict[tuple, list[Tensor]] = {}

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios, strict=True)]

    @staticmethod
    def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> Tensor:
        """FloatTensor[A, 4] of anchors centred on (0, 0), ratio-major."""
        scales = torch.as_tensor(sizes, dtype=torch.float32)
        ratios = torch.as_tensor(aspect_ratios, dtype=torch.float32)
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        # (R, 1) * (1, S) -> (R*S,)
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()

    def grid_anchors(
        self,
        feature_sizes: Sequence[tuple[int, int]],
        strides: Sequence[tuple[int, int]],
        dtype: torch.dtype,
        device: torch.device,
    ) -> list[Tensor]:
        """Per level, FloatTensor[H*W*A, 4] ordered location-major (row, column, anchor)."""
        # Sizes are symbolic (not hashable) while the model is being exported: no cache.
        symbolic = not all(isinstance(v, int) for size in feature_sizes for v in size)
        key = None if symbolic else (tuple(feature_sizes), tuple(strides), dtype, device)
        cached = None if symbolic else self._cache.get(key)
        if cached is not None:
            return cached
        if len(feature_sizes) != len(self.sizes):
            raise InputError(
                f"AnchorGenerator has {len(self.sizes)} levels of anchors but the backbone "
                f"returned {len(feature_sizes)} feature maps"
            )
        anchors = []
        for (h, w), (sy, sx), sizes, ratios in zip(
            feature_sizes, strides, self.sizes, self.aspect_ratios, strict=True
        ):
            base = self.cell_anchors(sizes, ratios).to(device=device, dtype=dtype)
            shift_x = torch.arange(w, dtype=torch.int32, device=device).to(dtype) * sx
            shift_y = torch.arange(h, dtype=torch.int32, device=device).to(dtype) * sy
            yy, xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
            xx, yy = xx.reshape(-1), yy.reshape(-1)
            shifts = torch.stack((xx, yy, xx, yy), dim=1)
            # (H*W, 1, 4) + (1, A, 4) -> (H*W*A, 4)
            anchors.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))
        # A handful of distinct input sizes occur in practice; keep the cache bounded anyway.
        if len(self._cache) > 32:
            self._cache.clear()
        if not symbolic:
            self._cache[key] = anchors
        return anchors

    def forward(self, batch_shape: tuple[int, int], features: Sequence[Tensor]) -> list[Tensor]:
        """Anchors for a padded batch.

        Args:
            batch_shape: ``(height, width)`` of the padded image batch.
            features: the pyramid's feature maps, FloatTensor[N, C, H_l, W_l] each.

        Returns:
            Per level, FloatTensor[H_l*W_l*A_l, 4] in input-pixel xyxy, shared by all images.
        """
        feature_sizes = [tuple(f.shape[-2:]) for f in features]
        strides = [(batch_shape[0] // h, batch_shape[1] // w) for h, w in feature_sizes]
        return self.grid_anchors(feature_sizes, strides, features[0].dtype, features[0].device)
