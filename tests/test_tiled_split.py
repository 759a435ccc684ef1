"""Tiled training on one large image: a spatial split into disjoint blocks, validated on
the held-out blocks predicted in tiles; no validation block overlaps training data."""

import numpy as np
import pytest
from test_train import TINY_RUN

from frcnn.cli import main
from frcnn.data import check_dataset, read_dataset
from frcnn.data.loader import read_record_image
from frcnn.data.records import DetectionDataset, ImageRecord
from frcnn.data.synth import write_synth
from frcnn.data.tiles import block_windows, crop_record, split_blocks


def _overlap(a, b):
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_block_windows_tile_the_image_exactly():
    blocks = block_windows(1000, 500, 400)
    # round(1000/400) = 2 columns of 500 px, round(500/400) = 1 row
    assert blocks.tolist() == [[0, 0, 500, 500], [500, 0, 1000, 500]]


def test_one_image_splits_into_disjoint_training_and_validation_blocks():
    rec = ImageRecord("big.png", None, 800, 800, [[390, 10, 420, 50], [10, 10, 60, 60]], [1, 2])
    ds = DetectionDataset(".", ["a", "b"], [rec])
    train, val, report = split_blocks(ds, tile=200, val_fraction=0.2, min_visibility=0.5)
    # blocks of 2 tiles (400 px): 2 x 2, one held out
    assert report["blocks"] == 4 and report["val_blocks"] == 1
    assert len(train.images) == 3 and len(val.images) == 1
    for v in val.images:
        assert all(not _overlap(v.window, t.window) for t in train.images)
        assert (v.width, v.height) == (400, 400)
    ids = [r.image_id for r in train.images + val.images]
    assert len(set(ids)) == len(ids)
    # the box across the x = 400 block edge has 1/3 of it left of the edge (dropped there,
    # counted) and 2/3 right of it (kept, clipped to [400, 10, 420, 50] -> [0, 10, 20, 50])
    assert report["boxes_cut"] == 1
    blocks = {r.window: r for r in [*train.images, *val.images] if r.window[2] - r.window[0] == 400}
    if (400, 0, 800, 400) in blocks:
        assert blocks[(400, 0, 800, 400)].boxes.tolist() == [[0, 10, 20, 50]]
    if (0, 0, 400, 400) in blocks:  # the other box only: the cut one was dropped here
        assert blocks[(0, 0, 400, 400)].labels.tolist() == [2]


def test_crop_record_reads_its_window(tmp_path):
    write_synth(tmp_path, 1, 128, seed=0)
    ds, _ = check_dataset(read_dataset(tmp_path), "header")
    rec = ds.images[0]
    crop, _ = crop_record(rec, np.array([10, 20, 74, 52], np.float32), 0.5, 99)
    full = read_record_image(rec)
    np.testing.assert_array_equal(read_record_image(crop), full[20:52, 10:74])
    inner, _ = crop_record(crop, np.array([4, 4, 20, 20], np.float32), 0.5, 100)
    assert inner.window == (14, 24, 30, 40)
    np.testing.assert_array_equal(read_record_image(inner), full[24:40, 14:30])


def test_train_on_one_large_image_with_tiles(tmp_path, capsys, monkeypatch):
    from frcnn.evaluation import plots

    drawn = []
    real_grid = plots.prediction_grid
    monkeypatch.setattr(
        plots, "prediction_grid", lambda *a, **k: drawn.append(a[2]) or real_grid(*a, **k)
    )
    write_synth(tmp_path / "one", 1, 384, seed=3, empty_prob=0.0)
    out = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "one"), "--tile", "96", "--epochs", "1"]
    assert main([*args, "--out", str(out), *TINY_RUN, "eval.conf=0.0"]) == 0
    # eval --run scores the recorded held-out block, in tiles, with the run's best weights:
    # the run's own final numbers
    import json

    import frcnn

    recorded = json.loads((out / "val_split.json").read_text())
    assert recorded["held_out"] and [e["window"] is not None for e in recorded["images"]] == [True]
    again = frcnn.evaluate(None, None, run=out)
    final = json.loads((out / "metrics.json").read_text())
    assert again.num_images == 1
    for key, value in again.coco.items():
        assert final[key] == pytest.approx(value, abs=5e-7), key
    # val_predictions.jpg shows the detections that were scored: the block predicted in
    # tiles, above the run's threshold.
    ((shown,),) = drawn
    (scored,) = again.predictions.values()
    sure = scored["scores"] >= again.conf
    assert sure.sum() > 0 and again.conf == 0.0
    np.testing.assert_allclose(shown["boxes"], scored["boxes"][sure], atol=1e-4)
    np.testing.assert_allclose(shown["scores"], scored["scores"][sure], atol=1e-6)
    assert main(["eval", "--run", str(out)]) == 0
    assert "all" in capsys.readouterr().out


def test_one_untiled_image_says_what_to_do(tmp_path, capsys):
    write_synth(tmp_path / "one", 1, 96, seed=3, empty_prob=0.0)
    assert (
        main(["train", "--data", str(tmp_path / "one"), "--out", str(tmp_path / "r"), *TINY_RUN])
        == 2
    )
    err = capsys.readouterr().err
    assert "too few to hold out" in err and "--val" in err and "--tile" in err


@pytest.mark.parametrize("size", [40])
def test_images_too_small_for_two_blocks_say_so(size):
    rec = ImageRecord("s.png", None, size, size, [[1, 1, 9, 9]], [1])
    with pytest.raises(ValueError, match="too small to split.*--val"):
        split_blocks(DetectionDataset(".", ["a"], [rec]), 64, 0.2, 0.5)


def test_tiled_validation_equals_predict_tile_then_eval_predictions(tmp_path):
    import json

    import frcnn

    write_synth(tmp_path / "train", 2, 192, seed=0, empty_prob=0.0)
    write_synth(tmp_path / "val", 2, 192, seed=1, empty_prob=0.0)
    out = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "train"), "--val", str(tmp_path / "val")]
    args += ["--tile", "96", "--epochs", "1", "--out", str(out), "--max-det", "300", *TINY_RUN]
    assert main(args) == 0
    in_training = json.loads((out / "metrics.json").read_text())
    weights = out / "weights" / "best.safetensors"
    preds = tmp_path / "preds"
    images = str(tmp_path / "val" / "images")
    found = frcnn.predict(weights, images, conf=0.0, out=preds, format="coco", tile=96, max_det=300)
    assert sum(len(p.boxes) for p in found) > 100  # the untrained model finds plenty
    again = frcnn.evaluate(
        None, tmp_path / "val", predictions=preds / "predictions.coco.json", max_det=300
    )
    for key, value in again.coco.items():
        assert in_training[key] == pytest.approx(value, abs=5e-7), key  # 6 digits in the file
    assert in_training["AP50"] > 0 and "maxDets=300" in again.coco_summary
    direct = frcnn.evaluate(weights, tmp_path / "val", tile=96, max_det=300)
    assert direct.coco == pytest.approx(again.coco, abs=1e-12)
