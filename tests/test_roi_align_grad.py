"""The sparse RoIAlign backward gives torchvision's gradients (forward is torchvision's)."""

import pytest
import torch
from torchvision.ops import roi_align

from frcnn.modeling.roi.align_grad import fast_roi_align, sample_matrix


def _rois():
    boxes = [
        [0, 0.0, 0.0, 63.0, 47.0],  # the whole map
        [0, 10.3, 5.7, 30.1, 20.9],
        [1, 60.0, 40.0, 64.0, 48.0],  # at the far border (clamped to the last cell)
        [1, -6.0, -3.0, 5.0, 4.0],  # starts outside: samples below -1 weigh nothing
        [0, 12.0, 12.0, 12.4, 12.2],  # smaller than a cell: size clamped to 1
        [1, 50.0, 30.0, 90.0, 70.0],  # beyond the map by more than a cell
    ]
    return torch.tensor(boxes)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("scale", "ratio"), [(0.25, 2), (0.125, 1), (0.5, 3)])
def test_gradients_equal_torchvisions(channels_last, scale, ratio):
    torch.manual_seed(0)
    feature = torch.randn(2, 5, 12, 16)
    if channels_last:
        feature = feature.contiguous(memory_format=torch.channels_last)
    rois = _rois()
    rois[:, 1:] = rois[:, 1:] * (0.25 / scale)  # the same boxes in map cells at every scale
    upstream = torch.randn(len(rois), 5, 7, 7)
    grads = []
    for pool in (roi_align, fast_roi_align):
        x = feature.clone().requires_grad_(True)
        out = pool(x, rois, (7, 7), scale, ratio)
        (out * upstream).sum().backward()
        grads.append((out.detach(), x.grad))
    (ref_out, ref_grad), (out, grad) = grads
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-5)


def test_sample_matrix_by_hand():
    # one 2x2-cell RoI over a 4x4 map, one bin, one sample at its centre (1, 1) + 0.5 ...
    rois = torch.tensor([[0.0, 0.0, 0.0, 2.0, 2.0]])
    weights = sample_matrix(rois, (1, 4, 4), (1, 1), 1.0, 1).to_dense()[:, 0].view(4, 4)
    # ... at y = x = 1.0: exactly cell (1, 1)
    expected = torch.zeros(4, 4)
    expected[1, 1] = 1.0
    torch.testing.assert_close(weights, expected)
    # two samples per side: at 0.5 and 1.5, each a quarter of the four cells around it
    weights = sample_matrix(rois, (1, 4, 4), (1, 1), 1.0, 2).to_dense()[:, 0].view(4, 4)
    assert weights.sum().item() == pytest.approx(1.0)
    assert weights[:3, :3].tolist() == [
        [1 / 16, 2 / 16, 1 / 16],
        [2 / 16, 4 / 16, 2 / 16],
        [1 / 16, 2 / 16, 1 / 16],
    ]


def test_without_gradients_it_is_torchvisions_call():
    feature = torch.randn(1, 3, 8, 8)
    rois = torch.tensor([[0.0, 1.0, 1.0, 20.0, 20.0]])
    with torch.no_grad():
        torch.testing.assert_close(
            fast_roi_align(feature.requires_grad_(True), rois, (7, 7), 0.25, 2),
            roi_align(feature, rois, (7, 7), 0.25, 2),
        )
