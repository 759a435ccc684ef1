"""RoIAlign with a faster backward pass on the CPU.

The forward pass is torchvision's ``roi_align`` (the same numbers). Its CPU backward kernel
scatters every sample's gradient one at a time on a single thread; in a CPU training step
of a small detector it costs about as much as the whole RoI head. Here the backward pass
is one sparse-dense matrix product instead: each pooled cell is a fixed weighted sum of at
most ``4 * sampling_ratio**2`` feature-map cells (bilinear corners of its sampling points),
so the gradient of the feature map is ``S^T @ grad`` for that sparse weight matrix ``S``,
built with tensor operations that follow torchvision's sampling rules exactly (bin
geometry, the -1/size validity test, clamping at the borders). Gradients agree with
torchvision's to float rounding (tests/test_roi_align_grad.py).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import roi_align


def fast_roi_align(
    feature: Tensor, rois: Tensor, output_size: tuple[int, int], scale: float, ratio: int
) -> Tensor:
    """``torchvision.ops.roi_align(feature, rois, output_size, scale, ratio)`` (``aligned``
    False), with the sparse backward pass when it applies: a float32 CPU feature map that
    needs a gradient and a fixed ``ratio`` > 0. Otherwise torchvision's own."""
    if (
        feature.device.type != "cpu"
        or feature.dtype != torch.float32
        or ratio <= 0
        or not (torch.is_grad_enabled() and feature.requires_grad)
    ):
        return roi_align(feature, rois, output_size, scale, ratio)
    return _RoIAlign.apply(feature, rois, output_size, scale, ratio)


class _RoIAlign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, feature: Tensor, rois: Tensor, output_size, scale: float, ratio: int):
        ctx.save_for_backward(rois)
        ctx.meta = (feature.shape, tuple(output_size), scale, ratio)
        return roi_align(feature, rois, output_size, scale, ratio)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (rois,) = ctx.saved_tensors
        shape, output_size, scale, ratio = ctx.meta
        n, c, h, w = shape
        weights = sample_matrix(rois, (n, h, w), output_size, scale, ratio)
        cells = grad.permute(0, 2, 3, 1).reshape(-1, c)  # (R * PH * PW, C)
        grad_feature = torch.sparse.mm(weights, cells.contiguous())  # (N * H * W, C)
        # an NHWC buffer viewed as NCHW: channels-last, like the detector's feature maps
        return grad_feature.view(n, h, w, c).permute(0, 3, 1, 2), None, None, None, None


def _axis(start: Tensor, bin_size: Tensor, bins: int, ratio: int, size: int):
    """Per RoI, bin and sampling point along one axis: the two bilinear neighbours and their
    weights, torchvision's rules (outside [-1, size]: weight 0; below 0: 0; from size - 1
    on: the last cell alone). Shapes (R, bins, ratio, 2)."""
    k = torch.arange(bins, dtype=start.dtype, device=start.device)[:, None]
    s = torch.arange(ratio, dtype=start.dtype, device=start.device)[None, :]
    start, bin_size = start[:, None, None], bin_size[:, None, None]
    pos = start + k * bin_size + (s + 0.5) * bin_size / ratio
    valid = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor().to(torch.int64)
    edge = low >= size - 1
    low = torch.where(edge, torch.full_like(low, size - 1), low)
    high = torch.where(edge, low, low + 1)
    frac = torch.where(edge, torch.zeros_like(pos), pos - low.to(pos.dtype))
    weights = torch.stack([1 - frac, frac], -1) * valid[..., None]
    return torch.stack([low, high], -1), weights


def sample_matrix(
    rois: Tensor,
    shape: tuple[int, int, int],
    output_size: tuple[int, int],
    scale: float,
    ratio: int,
) -> Tensor:
    """The sparse ``(N*H*W, R*PH*PW)`` matrix with ``pooled = S^T @ feature`` per channel:
    column ``(r, ph, pw)`` holds the weights of the feature cells that RoIAlign averages
    into that pooled cell."""
    n, h, w = shape
    ph, pw = output_size
    r = rois.shape[0]
    image = rois[:, 0].to(torch.int64)
    x1, y1, x2, y2 = (rois[:, 1:] * scale).unbind(1)
    roi_w = (x2 - x1).clamp(min=1.0)
    roi_h = (y2 - y1).clamp(min=1.0)
    yi, yw = _axis(y1, roi_h / ph, ph, ratio, h)  # (R, PH, ratio, 2)
    xi, xw = _axis(x1, roi_w / pw, pw, ratio, w)  # (R, PW, ratio, 2)
    # dims: R, PH, PW, sample y, sample x, corner y, corner x
    yi, yw = yi[:, :, None, :, None, :, None], yw[:, :, None, :, None, :, None]
    xi, xw = xi[:, None, :, None, :, None, :], xw[:, None, :, None, :, None, :]
    rows = (image[:, None, None, None, None, None, None] * h + yi) * w + xi
    values = yw * xw / (ratio * ratio)
    cols = torch.arange(r * ph * pw, device=rois.device).view(r, ph, pw, 1, 1, 1, 1)
    rows, cols = torch.broadcast_tensors(rows, cols)
    values = values.expand(rows.shape)
    index = torch.stack([rows.reshape(-1), cols.reshape(-1)])
    size = (n * h * w, r * ph * pw)  # indices are in range by construction: skip the check
    return torch.sparse_coo_tensor(index, values.reshape(-1), size, check_invariants=False)
