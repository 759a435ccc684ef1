"""The aerial and scan augmentation presets, checked by hand on one literal image and box."""

import numpy as np
import pytest
import torch

from frcnn.data.augment import Augmenter
from frcnn.data.loader import build_loader

W, H = 100, 60
BOX = [10.0, 5.0, 30.0, 25.0]
# BOX after each of the eight symmetries of the image, computed by hand: np.rot90 by k
# quarter turns (counter-clockwise: (x, y) -> (y, W - x) for k = 1), then, for the
# flipped ones, a horizontal flip of the rotated image (x -> width - x)
ROTATED = {
    0: [10, 5, 30, 25],
    1: [5, 70, 25, 90],  # [y1, W - x2, y2, W - x1]
    2: [70, 35, 90, 55],  # [W - x2, H - y2, W - x1, H - y1]
    3: [35, 10, 55, 30],  # [H - y2, x1, H - y1, x2]
}


def symmetries(image: np.ndarray) -> list[tuple[np.ndarray, list[float]]]:
    out = []
    for k, box in ROTATED.items():
        turned = np.rot90(image, k)
        width = turned.shape[1]
        out.append((turned, box))
        out.append((turned[:, ::-1], [width - box[2], box[1], width - box[0], box[3]]))
    return out


FLIPS = {
    "none": lambda im: im,
    "h": lambda im: im[:, ::-1],
    "v": lambda im: im[::-1],
    "hv": lambda im: im[::-1, ::-1],
}


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)


def test_each_transform_draws_its_own_numbers(image):
    # Albumentations seeds every transform of a pipeline alike, so two flips of p 0.5 would
    # fire together; seeded one by one they give all four combinations
    flips = Augmenter(["HorizontalFlip", "VerticalFlip"], seed=0)
    seen = set()
    for epoch in range(40):
        flips.set_epoch(epoch)
        out = flips(image, np.zeros((0, 4), np.float32))[0]
        seen.add(next(n for n, f in FLIPS.items() if (f(image) == out).all()))
    assert seen == set(FLIPS)


def test_aerial_gives_every_quarter_turn_and_flip_with_the_box_moved_along(image):
    # the geometry alone (the preset's first three transforms): each output is one of the
    # eight symmetries, its box the hand-computed one, and no box is ever dropped
    geometry = Augmenter(
        [{"name": "RandomRotate90", "p": 1.0}, "HorizontalFlip", "VerticalFlip"], seed=0
    )
    seen = set()
    for epoch in range(40):
        geometry.set_epoch(epoch)
        out, boxes, kept = geometry(image, np.array([BOX], np.float32))
        match = [
            i
            for i, (im, _) in enumerate(symmetries(image))
            if im.shape == out.shape and (im == out).all()
        ]
        assert len(match) == 1 and kept.tolist() == [0]
        np.testing.assert_allclose(boxes[0], symmetries(image)[match[0]][1], atol=1e-4)
        seen.add(match[0])
    assert seen == set(range(8))
    # the whole preset (with scale 0.8-1.25 about the centre) keeps a central box
    aerial = Augmenter("aerial", seed=0)
    central = np.array([[40.0, 20.0, 60.0, 40.0]], np.float32)
    for epoch in range(20):
        aerial.set_epoch(epoch)
        _, boxes, kept = aerial(image, central)
        side = boxes[0, 2:] - boxes[0, :2]
        assert kept.tolist() == [0] and (side >= 20 * 0.8 - 1e-3).all()
        assert (side <= 20 * 1.25 + 1e-3).all()


def test_scan_moves_boxes_only_by_flips_and_keeps_gray_gray(image):
    gray = np.repeat(image[:, :, :1], 3, axis=2)
    flips = {
        "none": BOX,
        "h": [W - BOX[2], BOX[1], W - BOX[0], BOX[3]],
        "v": [BOX[0], H - BOX[3], BOX[2], H - BOX[1]],
        "hv": [W - BOX[2], H - BOX[3], W - BOX[0], H - BOX[1]],
    }
    scan = Augmenter("scan", seed=0)
    seen = set()
    for epoch in range(30):
        scan.set_epoch(epoch)
        out, boxes, kept = scan(gray, np.array([BOX], np.float32))
        assert kept.tolist() == [0] and out.shape == gray.shape
        assert (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 1] == out[:, :, 2]).all()
        name = next(n for n, b in flips.items() if np.allclose(boxes[0], b, atol=1e-4))
        seen.add(name)
    assert seen == set(flips)


class _Same(torch.utils.data.Dataset):
    """Eight copies of one image and box, augmented: equal items mean equal draws."""

    def __init__(self, image):
        self.image, self.augment = image, Augmenter("aerial", seed=0)

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return self.augment(self.image, np.array([BOX], np.float32))[1].tolist(), {}


def test_ranks_and_workers_draw_their_own_augmentations(image):
    # every process holds a copy of the augmenter; equal copies gave the images of every
    # worker (and rank) the same draws: worker 0's k-th item equal to worker 1's k-th
    def boxes(items, workers, rank=0):
        loader = build_loader(items, 1, workers, rank=rank)
        return [b for (batch, _) in loader for b in batch]  # one item's boxes per batch

    items = _Same(image)
    two = boxes(items, 2)  # batches alternate between the workers: 0, 1, 0, 1, ...
    assert two[0::2] != two[1::2]
    assert boxes(items, 0) == boxes(items, 0) and boxes(items, 0, rank=1) != boxes(items, 0)
    # worker 0 of 2 draws what one process draws for its first items
    assert two[0::2] == boxes(_Same(image), 0)[:4]
