import torch

from frcnn.modeling.transform import ImageTransform


def test_keep_ratio_resize_pad_and_map_back():
    t = ImageTransform(min_size=100, max_size=150, image_mean=(0.0,) * 3, image_std=(1.0,) * 3)
    t.eval()
    images = [torch.rand(3, 50, 60), torch.rand(3, 40, 200)]
    targets = [
        {"boxes": torch.tensor([[6.0, 5.0, 30.0, 25.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[0.0, 0.0, 200.0, 40.0]]), "labels": torch.tensor([1])},
    ]
    batch, sizes, resized = t(images, targets)
    # image 0: short side 50 -> 100 (scale 2, long side 120 <= 150): 100 x 120
    # image 1: long side 200 -> 150 caps the scale at 0.75: 30 x 150
    assert sizes == [(100, 120), (30, 150)]
    # padded to multiples of 32 of the largest sides: 128 x 160
    assert batch.shape == (2, 3, 128, 160)
    assert batch[1, :, 30:, :].abs().sum() == 0 and batch[0, :, :, 120:].abs().sum() == 0
    torch.testing.assert_close(resized[0]["boxes"], torch.tensor([[12.0, 10.0, 60.0, 50.0]]))
    torch.testing.assert_close(resized[1]["boxes"], torch.tensor([[0.0, 0.0, 150.0, 30.0]]))
    assert targets[0]["boxes"].tolist() == [[6.0, 5.0, 30.0, 25.0]]  # caller's target untouched
    dets = [{"boxes": resized[0]["boxes"].clone()}, {"boxes": resized[1]["boxes"].clone()}]
    back = t.postprocess(dets, sizes, [(50, 60), (40, 200)])
    torch.testing.assert_close(back[0]["boxes"], targets[0]["boxes"])
    torch.testing.assert_close(back[1]["boxes"], targets[1]["boxes"])


def test_fixed_size_and_normalisation():
    t = ImageTransform(fixed_size=(64, 64), image_mean=(0.5,) * 3, image_std=(0.5,) * 3)
    image = torch.ones(1, 30, 90)  # grayscale is replicated to three channels
    batch, sizes, _ = t([image])
    assert sizes == [(64, 64)] and batch.shape == (1, 3, 64, 64)
    torch.testing.assert_close(batch, torch.ones(1, 3, 64, 64))  # (1 - 0.5) / 0.5


def test_training_draws_min_size_from_candidates():
    t = ImageTransform(min_size=(64, 96), max_size=1000)
    torch.manual_seed(0)
    seen = {t([torch.rand(3, 32, 32)])[1][0] for _ in range(20)}
    assert seen == {(64, 64), (96, 96)}
    t.eval()
    assert t([torch.rand(3, 32, 32)])[1] == [(96, 96)]
