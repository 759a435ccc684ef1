import math

import pytest
import torch

from frcnn.boxes.ops import DEFAULT_DELTA_CLAMP, BoxCoder, clip_boxes, remove_small_boxes


def test_encode_hand_computed():
    # reference: centre (10, 20), size 20 x 40; target: centre (15, 20), size 40 x 20
    ref = torch.tensor([[0.0, 0.0, 20.0, 40.0]])
    gt = torch.tensor([[-5.0, 10.0, 35.0, 30.0]])
    deltas = BoxCoder((1.0, 1.0, 1.0, 1.0)).encode(gt, ref)
    expected = torch.tensor([[5 / 20, 0.0, math.log(2.0), math.log(0.5)]])
    torch.testing.assert_close(deltas, expected)
    weighted = BoxCoder((10.0, 10.0, 5.0, 5.0)).encode(gt, ref)
    torch.testing.assert_close(weighted, expected * torch.tensor([10.0, 10.0, 5.0, 5.0]))


def test_encode_decode_round_trip():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(50, 2, generator=g) * 100
    ref = torch.cat([ref, ref + 1 + torch.rand(50, 2, generator=g) * 50], dim=1)
    gt = torch.rand(50, 2, generator=g) * 100
    gt = torch.cat([gt, gt + 1 + torch.rand(50, 2, generator=g) * 50], dim=1)
    for weights in [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]:
        coder = BoxCoder(weights)
        torch.testing.assert_close(coder.decode(coder.encode(gt, ref), ref), gt, rtol=0, atol=1e-3)


def test_decode_class_specific_layout_and_clamp():
    ref = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    # two classes: identity deltas, then a huge dw/dh that must be clamped at log(1000/16)
    deltas = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 100.0, 100.0]])
    out = BoxCoder().decode(deltas, ref)
    assert out.shape == (1, 8)
    torch.testing.assert_close(out[0, :4], ref[0])
    half = 0.5 * 10 * math.exp(DEFAULT_DELTA_CLAMP)  # 312.5
    torch.testing.assert_close(out[0, 4:], torch.tensor([5 - half, 5 - half, 5 + half, 5 + half]))
    assert DEFAULT_DELTA_CLAMP == pytest.approx(math.log(62.5))


def test_clip_and_remove_small():
    boxes = torch.tensor(
        [[-5.0, -5.0, 50.0, 30.0], [10.0, 10.0, 10.5, 40.0], [90.0, 0.0, 200.0, 5.0]]
    )
    clipped = clip_boxes(boxes, (20, 100))  # height 20, width 100
    expected = torch.tensor(
        [[0.0, 0.0, 50.0, 20.0], [10.0, 10.0, 10.5, 20.0], [90.0, 0.0, 100.0, 5.0]]
    )
    torch.testing.assert_close(clipped, expected)
    assert remove_small_boxes(clipped, 1.0).tolist() == [0, 2]


def test_overlap_numpy_and_torch_agree_with_hand_computed_values():
    import numpy as np

    from frcnn.boxes.overlap import box_intersection, box_ioa, box_iou

    a = [[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 25.0]]
    b = [[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]
    inter = [[100, 50, 0], [25, 25, 0]]
    iou = [[1.0, 0.5, 0.0], [25 / 275, 25 / 225, 0.0]]
    ioa = [[1.0, 0.5, 0.0], [25 / 200, 25 / 200, 0.0]]
    for kind in (np.array, torch.tensor):
        x, y = kind(a), kind(b)
        np.testing.assert_allclose(np.asarray(box_intersection(x, y)), inter)
        np.testing.assert_allclose(np.asarray(box_iou(x, y)), iou, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(box_ioa(x, y)), ioa, rtol=1e-6)
    # the detector's torchvision box_iou gives the same numbers
    torch.testing.assert_close(
        box_iou(torch.tensor(a), torch.tensor(b)),
        __import__("torchvision").ops.box_iou(torch.tensor(a), torch.tensor(b)),
    )
