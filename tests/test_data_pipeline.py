import numpy as np
import pytest
import torch
import yaml
from data_helpers import save_image, write_coco

import frcnn
import frcnn.data.loader as loader_module
from frcnn.boxes.overlap import wh_iou
from frcnn.cli import main
from frcnn.data import check_dataset, read_dataset
from frcnn.data.anchor_fit import fit_anchors
from frcnn.data.augment import Augmenter
from frcnn.data.decoded import DecodedImages
from frcnn.data.loader import DetectionTorchDataset, RepeatFactorSampler, collate, repeat_factors
from frcnn.data.records import DetectionDataset, ImageRecord
from frcnn.data.synth import write_synth
from frcnn.data.tiles import TiledDataset, boxes_in_window, split_blocks, tile_windows


def _records(labels_per_image, size=(64, 64)):
    recs = [
        ImageRecord(
            f"{i}.png",
            None,
            size[0],
            size[1],
            np.tile([[4.0, 4.0, 20.0, 20.0]], (len(labels), 1)),
            labels,
            image_id=i,
        )
        for i, labels in enumerate(labels_per_image)
    ]
    return DetectionDataset(".", ["a", "b"], recs)


def test_repeat_factors_hand_computed():
    # class a in 4 of 4 images (f = 1), class b in 1 of 4 (f = 0.25); threshold 0.5:
    # r_a = max(1, sqrt(0.5 / 1)) = 1, r_b = sqrt(0.5 / 0.25) = sqrt(2)
    ds = _records([[1], [1], [1], [1, 2]])
    np.testing.assert_allclose(repeat_factors(ds, 0.5), [1, 1, 1, np.sqrt(2)])
    sampler = RepeatFactorSampler(ds, threshold=0.5, seed=0)
    draws = []
    for epoch in range(200):
        sampler.set_epoch(epoch)
        draws.append(list(sampler).count(3))
    assert np.mean(draws) == pytest.approx(np.sqrt(2), abs=0.1)
    sampler.set_epoch(7)
    first = list(sampler)
    sampler.set_epoch(7)
    assert list(sampler) == first and len(sampler) == len(first)


def test_images_without_boxes_repeat_once():
    ds = _records([[], [1]])
    # class a is in half the images: with threshold 0.5 nothing repeats, with 0.9 image 1 does
    np.testing.assert_allclose(repeat_factors(ds, 0.5), [1.0, 1.0])
    np.testing.assert_allclose(repeat_factors(ds, 0.9), [1.0, np.sqrt(0.9 / 0.5)])


def test_augmenter_moves_boxes_and_counts_drops():
    image = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[10, 10, 30, 40], [95, 95, 100, 100]], np.float32)
    flip = Augmenter([{"name": "HorizontalFlip", "p": 1.0}])
    _, out, kept = flip(image, boxes)
    np.testing.assert_allclose(out, [[70, 10, 90, 40], [0, 95, 5, 100]], atol=1e-4)
    assert kept.tolist() == [0, 1]
    shift = Augmenter(
        [{"name": "Affine", "translate_px": {"x": -50, "y": 0}, "p": 1.0}], min_visibility=0.5
    )
    _, out, kept = shift(image, boxes)
    # box 0 moves to x -40..-20 (out of the image: dropped), box 1 to x 45..50 (kept)
    assert kept.tolist() == [1]
    np.testing.assert_allclose(out, [[45, 95, 50, 100]], atol=1e-4)
    for name in ("none", "light", "default", "heavy"):
        img, b, k = Augmenter(name)(image, boxes)
        assert img.shape == image.shape and len(b) == len(k)
    with pytest.raises(ValueError, match="not an Albumentations transform"):
        Augmenter([{"name": "NoSuchThing"}])
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augmenter("extreme")


def test_torch_dataset_collate_and_progressive_resize(tmp_path):
    path = write_coco(
        tmp_path,
        [
            {"id": 1, "file_name": "a.png", "width": 80, "height": 40},
            {"id": 2, "file_name": "b.png", "width": 64, "height": 48},
        ],
        [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 4, 16, 8]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [40, 4, 16, 8], "iscrowd": 1},
        ],
        [{"id": 1, "name": "a"}],
    )
    ds, _ = check_dataset(read_dataset(path))
    data = DetectionTorchDataset(ds)
    image, target = data[0]
    assert image.shape == (3, 40, 80) and image.dtype == torch.float32
    assert target["boxes"].tolist() == [[8, 4, 24, 12]] and target["labels"].tolist() == [1]
    assert target["ignore_boxes"].tolist() == [[40, 4, 56, 12]]  # crowd: not trained on
    images, targets = collate([data[0], data[1]])
    assert [t["boxes"].shape[0] for t in targets] == [1, 0] and len(images) == 2
    data.set_image_size(160)
    image, target = data[0]
    assert image.shape == (3, 80, 160) and target["boxes"].tolist() == [[16, 8, 48, 24]]


def test_tile_windows_literal():
    windows = tile_windows(250, 100, tile=100, overlap=0.5)
    assert windows[:, 0].tolist() == [0, 50, 100, 150] and (windows[:, 1] == 0).all()
    assert (windows[:, 2] - windows[:, 0] == 100).all()
    assert tile_windows(60, 40, 100, 0.2).tolist() == [[0, 0, 60, 40]]


def test_box_on_a_seam_kept_when_visible_enough():
    box = np.array([[80.0, 10.0, 120.0, 30.0]])  # 40 px wide, split 20/20 by x = 100
    clipped, keep = boxes_in_window(box, np.array([0, 0, 100, 100], np.float32), 0.5)
    assert keep.tolist() == [True] and clipped.tolist() == [[80, 10, 100, 30]]
    _, keep = boxes_in_window(box, np.array([0, 0, 90, 100], np.float32), 0.5)
    assert keep.tolist() == [False]  # only 10 of 40 px visible


def test_tiled_dataset_counts(tmp_path, monkeypatch):
    save_image(tmp_path / "big.png", 200, 100)
    path = write_coco(
        tmp_path,
        [{"id": 1, "file_name": "big.png", "width": 200, "height": 100, "_no_file": True}],
        [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},  # inside tile 0
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "bbox": [90, 10, 20, 20],
            },  # on the seam at 100
        ],
        [{"id": 1, "name": "a"}],
    )
    ds, _ = check_dataset(read_dataset(path))
    tiles = TiledDataset(ds, tile=100, overlap=0.0, min_visibility=0.6)
    assert len(tiles) == 2
    # the seam box is 50% visible in each tile: dropped from both, so lost
    assert tiles.report["boxes_dropped"] == 2 and tiles.report["boxes_lost"] == 1
    image, target = tiles[0]
    assert image.shape == (3, 100, 100) and target["boxes"].tolist() == [[10, 10, 30, 30]]
    overlapping = TiledDataset(ds, tile=100, overlap=0.5, min_visibility=0.6)
    assert overlapping.report["boxes_lost"] == 0  # the middle tile holds it whole
    # the image is decoded once for its three tiles, and the tiles are copies
    decoded = []
    monkeypatch.setattr(
        loader_module,
        "_read_source",
        lambda *a: decoded.append(1) or np.full((100, 200, 3), 7, np.uint8),
    )
    first = overlapping[0][0]
    assert [overlapping[i][0].shape for i in (1, 2)] == [(3, 100, 100)] * 2 and len(decoded) == 1
    assert (first == overlapping[0][0]).all()  # the kept image was not changed by a tile


def test_blocks_of_one_image_share_its_decode(tmp_path, monkeypatch):
    # a 200x100 image as two 100 px blocks (a training and a validation one): with one
    # cache, the image is decoded once for both blocks and the tiles of the training one,
    # and what each read returns is its own copy (changing it leaves the kept image as is)
    save_image(tmp_path / "big.png", 200, 100)
    path = write_coco(
        tmp_path,
        [{"id": 1, "file_name": "big.png", "width": 200, "height": 100, "_no_file": True}],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [110, 10, 20, 20]}],
        [{"id": 1, "name": "a"}],
    )
    ds, _ = check_dataset(read_dataset(path))
    train, val, _ = split_blocks(ds, tile=100, val_fraction=0.5, min_visibility=0.5)
    pixels = np.arange(200 * 100 * 3, dtype=np.int64).reshape(100, 200, 3).astype(np.uint8)
    decoded = []
    monkeypatch.setattr(
        loader_module, "_read_source", lambda *a: decoded.append(1) or pixels.copy()
    )
    cache = DecodedImages(10**8)
    val_items = DetectionTorchDataset(val, decoded=cache)
    tiles = TiledDataset(train, tile=50, overlap=0.0, decoded=cache)
    image, rec = val_items.load(0)
    x1, y1, x2, y2 = rec.window
    assert (image == pixels[y1:y2, x1:x2]).all() and len(tiles) == 4
    image[:] = 0
    assert (val_items.load(0)[0] == pixels[y1:y2, x1:x2]).all()
    wx1, wy1, _, _ = train.images[0].window
    crops = [tiles.part(i)[0][0] for i in range(4)]
    assert (crops[3] == pixels[wy1 + 50 : wy1 + 100, wx1 + 50 : wx1 + 100]).all()
    assert len(decoded) == 1


def test_decoded_images_keep_the_most_recent_within_the_limit():
    # 100 bytes: two 40-byte images fit; a third evicts the least recently used (1, since 0
    # was read after it); an image over the limit is returned but not kept
    kept = DecodedImages(100)
    for i in (0, 1):
        kept.put(i, np.zeros(40, np.uint8))
    assert kept.get(0) is not None
    kept.put(2, np.zeros(40, np.uint8))
    assert list(kept.images) == [0, 2] and kept.bytes == 80 and kept.get(1) is None
    assert kept.put(3, np.zeros(101, np.uint8)).nbytes == 101 and list(kept.images) == [0, 2]


def test_anchor_fit_snippet_is_accepted_and_fits_better(tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for i in range(50):  # tall thin objects of about 20 x 60 px: far from the default anchors
        w, h = rng.uniform(15, 25), rng.uniform(50, 70)
        recs.append(
            ImageRecord(f"{i}.png", None, 400, 400, [[50, 50, 50 + w, 50 + h]], [1], image_id=i)
        )
    ds = DetectionDataset(".", ["a"], recs)
    fit = fit_anchors(ds, k=5, min_size=400, max_size=400)
    assert fit.iou_fitted > fit.iou_default + 0.1
    assert all(r > 2 for r in fit.aspect_ratios[0][-1:])  # h / w of about 3 found
    model = frcnn.build_model("resnet18_fpn", 2, **yaml.safe_load(yaml.safe_dump(fit.model_args())))
    assert model.rpn.anchor_generator.num_anchors_per_location() == [3] * 5
    np.testing.assert_allclose(
        wh_iou(np.array([[10.0, 10.0]]), np.array([[10.0, 10.0], [20.0, 5.0]])), [[1.0, 50 / 150]]
    )


def test_anchors_cli_writes_only_where_asked_and_training_reads_it(tmp_path, capsys, monkeypatch):
    from frcnn.config import load_config, read_anchors

    write_synth(tmp_path / "s", 12, 128, seed=1)
    monkeypatch.chdir(tmp_path)
    fit = ["anchors", str(tmp_path / "s"), "--k", "4", "--min-size", "128", "--max-size", "128"]
    assert main(fit) == 0
    assert "save it with --out" in capsys.readouterr().out and not list(tmp_path.glob("*.yaml"))
    out = tmp_path / "fit" / "anchors.yaml"
    assert main([*fit, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mean best-anchor IoU" in text and "default anchors" in text
    snippet = yaml.safe_load(out.read_text())
    args = snippet["model"]["args"]
    frcnn.build_model("resnet18_fpn", 6, **args)
    # --config takes the file as it is; --anchors takes it, and a frcnn 0.1 flat snippet
    assert load_config(out).model.args == args
    assert load_config(None, **read_anchors(out)).model.args == args
    flat = tmp_path / "old.yaml"
    flat.write_text(yaml.safe_dump(args))
    assert load_config(None, **read_anchors(flat)).model.args == args
    import frcnn.engine.trainer as trainer_module

    seen = []
    monkeypatch.setattr(trainer_module, "train", lambda cfg: seen.append(cfg) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "train", "--data", str(tmp_path / "s"), "--anchors", str(out)])
    assert {k: seen[0].model.args[k] for k in args} == args  # over the recipe's anchors
    with pytest.raises(KeyError, match="model.args.anchor_sizes.*--anchors"):
        load_config(flat)
    with pytest.raises(ValueError, match="not an anchors file"):
        read_anchors(tmp_path / "s" / "annotations.json")


def test_anchors_fit_the_tiles_training_sees(tmp_path, capsys):
    from frcnn.data.anchor_fit import resized_box_sizes
    from frcnn.data.tiles import tile_records

    # a 512 px image in 128 px tiles resized to 256: boxes doubled (whole image: halved);
    # the box across the x = 128 tile edge is clipped in both tiles and kept where at least
    # half of it is inside (the right tile: 30 of 40 px)
    rec = ImageRecord("a.png", None, 512, 512, [[10, 10, 30, 50], [118, 10, 158, 30]], [1, 1])
    ds = DetectionDataset(".", ["a"], [rec])
    tiled = resized_box_sizes(tile_records(ds, 128, 0.0, 0.5), 256, 256)
    np.testing.assert_allclose(tiled, [[40, 80], [60, 40]])
    np.testing.assert_allclose(resized_box_sizes(ds, 256, 256), [[10, 20], [20, 10]])
    write_synth(tmp_path / "s", 1, 512, seed=1, empty_prob=0.0)
    fit = ["anchors", str(tmp_path / "s"), "--k", "2", "--min-size", "256", "--max-size", "256"]
    assert main([*fit, "--tile", "128", "--overlap", "0"]) == 0
    assert "in 16 tiles of 128 px" in capsys.readouterr().out


def test_synth_dataset_is_deterministic_and_varied(tmp_path):
    a = write_synth(tmp_path / "a", 40, 128, seed=3)
    b = write_synth(tmp_path / "b", 40, 128, seed=3)
    assert a.read_text() == b.read_text()
    ds, report = check_dataset(read_dataset(a), images="full")
    assert report.num_errors == 0 and report.images_without_boxes > 0
    assert len(report.instances) == 5 and report.sizes["small"] > 0 and report.sizes["medium"] > 0
    gray = write_synth(tmp_path / "g", 3, 64, grayscale=True)
    from PIL import Image

    assert Image.open(gray.parent / "images" / "000001.png").mode == "L"


def test_hugging_face_streaming_source(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    from frcnn.data.hf import HFStreamDataset

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    features = datasets.Features(
        {
            "image_id": datasets.Value("int64"),
            "image": datasets.Image(),
            "objects": {
                "bbox": datasets.List(datasets.List(datasets.Value("float32"), length=4)),
                "category": datasets.List(datasets.ClassLabel(names=["cat", "dog"])),
            },
        }
    )
    rows = {
        "image_id": [7, 8],
        "image": [Image.new("RGB", (40, 30)), Image.new("L", (20, 20))],
        "objects": [
            {"bbox": [[1, 2, 10, 5], [3, 3, 0, 4]], "category": [1, 0]},
            {"bbox": [], "category": []},
        ],
    }
    (tmp_path / "hub" / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(
        str(tmp_path / "hub" / "data" / "train-00000.parquet")
    )
    source = f"hf:{tmp_path / 'hub'}:train"
    ds = read_dataset(source)
    assert ds.format == "hf" and ds.class_names == ["cat", "dog"] and len(ds) == 2
    np.testing.assert_allclose(ds.images[0].boxes, [[1, 2, 11, 7], [3, 3, 3, 7]])  # xywh -> xyxy
    assert ds.images[0].labels.tolist() == [2, 1]
    clean, report = check_dataset(ds)
    assert report.boxes_dropped == {"box_degenerate": 1} and report.adds_up()
    image, target = next(iter(HFStreamDataset(source)))
    assert image.shape == (3, 30, 40) and target["labels"].tolist() == [2]
    assert int(target["invalid_dropped"]) == 1
    assert main(["data", "convert", source, "--to", "coco", str(tmp_path / "out")]) == 0
    assert len(read_dataset(tmp_path / "out")) == 2
