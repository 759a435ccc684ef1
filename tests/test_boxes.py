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
