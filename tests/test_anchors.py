import torch

from frcnn.modeling.proposals.anchors import AnchorGenerator
from frcnn.modeling.roi.pooler import map_levels


def test_cell_anchors_literal():
    # size 32: ratio 0.5 -> w = 32 / sqrt(0.5) = 45.25, h = 22.63; halves rounded
    cell = AnchorGenerator.cell_anchors((32,), (0.5, 1.0, 2.0))
    expected = torch.tensor(
        [
            [-23.0, -11.0, 23.0, 11.0],
            [-16.0, -16.0, 16.0, 16.0],
            [-11.0, -23.0, 11.0, 23.0],
        ]
    )
    torch.testing.assert_close(cell, expected)


def test_grid_anchors_literal_and_order():
    gen = AnchorGenerator(sizes=((8, 16),), aspect_ratios=((1.0,),))
    feature = torch.zeros(1, 4, 2, 3)  # 2 rows x 3 columns at stride 4 for a 8 x 12 batch
    (anchors,) = gen((8, 12), [feature])
    # location-major (row, column), then anchor; centre of location (x, y) is (4x, 4y)
    expected = torch.tensor(
        [
            [-4.0, -4.0, 4.0, 4.0], [-8.0, -8.0, 8.0, 8.0],
            [0.0, -4.0, 8.0, 4.0], [-4.0, -8.0, 12.0, 8.0],
            [4.0, -4.0, 12.0, 4.0], [0.0, -8.0, 16.0, 8.0],
            [-4.0, 0.0, 4.0, 8.0], [-8.0, -4.0, 8.0, 12.0],
            [0.0, 0.0, 8.0, 8.0], [-4.0, -4.0, 12.0, 12.0],
            [4.0, 0.0, 12.0, 8.0], [0.0, -4.0, 16.0, 12.0],
        ]
    )  # fmt: skip
    torch.testing.assert_close(anchors, expected)
    assert gen.num_anchors_per_location() == [2]


def test_anchors_are_cached_per_size_and_device():
    gen = AnchorGenerator(sizes=((32,), (64,)), aspect_ratios=((1.0,), (1.0,)))
    feats = [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4)]
    first = gen((32, 32), feats)
    assert gen((32, 32), feats)[0] is first[0]
    assert gen((64, 64), [torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 8, 8)])[0] is not first[0]


def test_level_mapping_hand_computed():
    # sqrt(area) 224 -> level 4; 112 -> 3; 448 -> 5; 56 -> 2; 16 -> clamped 2; 2000 -> clamped 5
    sides = torch.tensor([224.0, 112.0, 448.0, 56.0, 16.0, 2000.0, 223.0])
    boxes = torch.stack([torch.zeros_like(sides), torch.zeros_like(sides), sides, sides], dim=1)
    levels = map_levels(boxes, min_level=2, max_level=5)
    assert levels.tolist() == [2, 1, 3, 0, 0, 3, 1]  # indices relative to P2
