import numpy as np
import pytest
import torch
from data_helpers import write_coco
from test_train import TINY_RUN

import frcnn
from frcnn.config import load_config
from frcnn.data import check_dataset, read_dataset
from frcnn.data.loader import DetectionTorchDataset
from frcnn.data.mosaic import Mosaic, combine
from frcnn.data.synth import write_synth
from frcnn.data.tiles import TiledDataset
from frcnn.engine.stream import _refuse
from frcnn.errors import InputError


def _part(value, boxes, labels, ignore=None):
    image = np.full((80, 100, 3), value, np.uint8)  # 100 px wide, 80 high
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    ignore = np.zeros(len(boxes), bool) if ignore is None else np.array(ignore)
    return image, boxes, np.array(labels), ignore


def test_mosaic_by_hand():
    # centre (40, 30) on a 100 x 80 frame: quarters [0,0,40,30] [40,0,100,30] [0,30,40,80]
    # [40,30,100,80]; each part shows the corner touching the centre, so the parts move by
    # (40-100, 30-80) = (-60, -50), (+40, -50), (-60, +30) and (+40, +30)
    parts = [
        # [70,60,90,75] -> [10,10,30,25] kept; [0,0,20,20] -> wholly off the canvas, not an
        # item's box; [50,40,70,60] -> [-10,-10,10,10], 10 x 10 of 20 x 20 shows (0.25 < 0.3)
        _part(10, [[70, 60, 90, 75], [0, 0, 20, 20], [50, 40, 70, 60]], [1, 2, 3]),
        # [0,60,20,80] -> [40,10,60,30] kept
        _part(20, [[0, 60, 20, 80]], [4]),
        # [60,0,100,30] -> [0,30,40,60] kept; an ignored region rides along: [70,10,90,20]
        # -> [10,40,30,50]
        _part(30, [[60, 0, 100, 30], [70, 10, 90, 20]], [5, 6], [False, True]),
        # [10,10,30,30] -> [50,40,70,60] kept; [50,40,80,60] -> [90,70,120,90] clipped to
        # [90,70,100,80]: 10 x 10 of 30 x 20 shows (0.17): cut
        _part(40, [[10, 10, 30, 30], [50, 40, 80, 60]], [7, 8]),
    ]
    image, boxes, labels, ignore, dropped = combine(parts, (40, 30), 0.3)
    assert image.shape == (80, 100, 3)
    assert (image[:30, :40] == 10).all() and (image[:30, 40:] == 20).all()
    assert (image[30:, :40] == 30).all() and (image[30:, 40:] == 40).all()
    np.testing.assert_array_equal(
        boxes,
        [[10, 10, 30, 25], [40, 10, 60, 30], [0, 30, 40, 60], [10, 40, 30, 50], [50, 40, 70, 60]],
    )
    assert labels.tolist() == [1, 4, 5, 6, 7]
    assert ignore.tolist() == [False, False, False, True, False]
    assert dropped == 2


def test_mosaic_fills_what_smaller_parts_leave():
    # a 50 x 40 part at bottom-right of centre (60, 50) covers [60,50,100,80] of its
    # quarter [60,50,100,80] only up to x 110 -> clipped at 100, y 90 -> 80: all of it; a
    # 50 x 40 part at top-left covers [10,10,60,50] of [0,0,60,50]: the rest is gray
    small = (np.full((40, 50, 3), 7, np.uint8), np.zeros((0, 4), np.float32), np.zeros(0, int),
             np.zeros(0, bool))  # fmt: skip
    big = _part(1, [], [])
    image, boxes, *_ = combine([big, big, big, small], (60, 50), 0.3)
    assert (image[50:, 60:] == 7).all()
    image, *_ = combine([big, small, small, small], (60, 50), 0.3)
    assert (image[:50, 60:] == 114).any() and (image[:10, 60:] == 114).all()
    assert len(boxes) == 0


def test_mosaic_draws_repeat_per_epoch_and_item():
    m = Mosaic(0.5, seed=3)
    first = [m.draw(i, 10) for i in range(20)]
    assert first == [m.draw(i, 10) for i in range(20)]
    assert 0 < sum(d is not None for d in first) < 20
    m.set_epoch(1)
    assert first != [m.draw(i, 10) for i in range(20)]
    assert all(Mosaic(1.0).draw(i, 10) is not None for i in range(5))
    assert Mosaic(1.0).draw(0, 1) is None  # nothing to combine with


def test_datasets_serve_mosaics_with_every_kept_box(tmp_path):
    # four 64 x 64 images, each one box in its middle: a mosaic keeps a box where at least
    # 0.3 of it shows, and the count of boxes and cuts adds up to what the parts held
    images = [{"id": i, "file_name": f"{i}.png", "width": 64, "height": 64} for i in range(4)]
    boxes = [
        {"id": i, "image_id": i, "category_id": 1, "bbox": [24, 24, 16, 16], "area": 256}
        for i in range(4)
    ]
    path = write_coco(tmp_path, images, boxes, [{"id": 1, "name": "a"}])
    ds, _ = check_dataset(read_dataset(path))
    for items in (DetectionTorchDataset(ds), TiledDataset(ds, 64, 0.0)):
        items.mosaic = Mosaic(1.0, seed=0)
        for i in range(len(items)):
            image, target = items[i]
            assert image.shape == (3, 64, 64)
            b = target["boxes"]
            assert (b[:, 2:] > b[:, :2]).all() and (b >= 0).all() and (b <= 64).all()
            assert len(b) + int(target["aug_dropped"]) <= 4
            assert torch.equal(target["labels"], torch.ones(len(b), dtype=torch.int64))


def test_training_with_mosaic_runs_and_is_refused_for_a_stream(tmp_path):
    write_synth(tmp_path / "d", 8, 96, seed=4)
    cfg = load_config(
        None,
        [*TINY_RUN, "data.mosaic=1.0", "schedule.epochs=1"],
        **{"data.train": str(tmp_path / "d"), "run.out": str(tmp_path / "run")},
    )
    assert frcnn.train(cfg).epochs == 1
    cfg.data.train = "hf:some/dataset"
    with pytest.raises(InputError, match="data.mosaic"):
        _refuse(cfg)
    with pytest.raises(ValueError, match="data.mosaic"):
        load_config(None, ["data.mosaic=1.5"])
