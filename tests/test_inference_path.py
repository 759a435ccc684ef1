"""The one way from model files to predictions: options as one value, composed detectors,
predictions independent of batch neighbours, the model file's threshold."""

import numpy as np
import pytest
import torch
from conftest import TINY
from PIL import Image

import frcnn
from frcnn.inference.compose import calibrated_path, load_detector
from frcnn.inference.detectors import ModelDetector, TiledDetector, same_size_groups
from frcnn.inference.options import InferenceOptions
from frcnn.modeling.transform import ImageTransform

# A random model reports nearly every box above a zero score threshold.
LOOSE = {**TINY, "box_score_thresh": 0.0}


def _weights(tmp_path, conf=None, **args):
    torch.manual_seed(0)
    model = frcnn.build_model("resnet18_fpn", 3, **{**LOOSE, **args})
    model.conf = conf
    return frcnn.save_model(model, tmp_path / "m.safetensors", class_names=["a", "b"])


def _image(path, h, w, seed):
    array = np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8)
    Image.fromarray(array).save(path)
    return path


def test_padded_size_is_the_size_of_the_batch_an_image_becomes_alone():
    t = ImageTransform(128, 128).eval()
    # 90x120: scale min(128/90, 128/120) = 1.0667 -> 96x128, already multiples of 32.
    assert t.padded_size(90, 120) == (96, 128)
    # 50x200: scale 0.64 -> 32x128.  70x70: scale 1.83 -> 128x128.
    assert t.padded_size(50, 200) == (32, 128)
    assert t.padded_size(70, 70) == (128, 128)
    # 100x103: scale 128/103 = 1.2427 -> floor(124.27) = 124 -> 128, and 128 x 128.
    assert t.padded_size(100, 103) == (128, 128)
    for h, w in [(90, 120), (50, 200), (70, 70), (100, 103), (33, 77), (400, 91)]:
        batch, _, _ = t([torch.rand(3, h, w)])
        assert tuple(batch.shape[-2:]) == t.padded_size(h, w), (h, w)


def test_images_group_by_their_padded_size(tiny_model):
    images = [torch.rand(3, *s) for s in [(90, 120), (70, 70), (96, 128), (64, 64), (50, 200)]]
    # 90x120 and 96x128 pad to 96x128; 70x70 and 64x64 to 128x128; 50x200 to 32x128.
    assert same_size_groups(tiny_model, images) == [[0, 2], [1, 3], [4]]


def test_a_folder_predicts_as_each_image_alone(tmp_path):
    weights = _weights(tmp_path)
    folder = tmp_path / "images"
    folder.mkdir()
    sizes = [(90, 120), (70, 70), (96, 128), (64, 64), (50, 200), (100, 103)]
    files = [_image(folder / f"{i}.png", h, w, i) for i, (h, w) in enumerate(sizes)]
    together = frcnn.predict(weights, [str(folder)], conf=0.0, batch_size=4)
    assert [p.path.name for p in together] == [f.name for f in files]
    for p, f in zip(together, files, strict=True):
        (alone,) = frcnn.predict(weights, [str(f)], conf=0.0, batch_size=1)
        assert len(p.scores) == len(alone.scores) > 0
        np.testing.assert_allclose(p.boxes, alone.boxes, atol=1e-3)
        np.testing.assert_allclose(p.scores, alone.scores, atol=1e-5)
        np.testing.assert_array_equal(p.labels, alone.labels)


def test_padding_is_what_made_neighbours_matter(tmp_path):
    """The defect the grouping removes: the plain model batched with a larger image gives
    the smaller one other detections than alone."""
    model = frcnn.load_model(_weights(tmp_path))
    g = torch.Generator().manual_seed(1)
    # 90x120 pads to 96x128 alone, to 128x128 beside a 70x70 image.
    small, large = torch.rand(3, 90, 120, generator=g), torch.rand(3, 70, 70, generator=g)
    with torch.no_grad():
        mixed = model([small, large])[0]
        alone = model([small])[0]
        grouped = ModelDetector(model)([small, large])[0]
    n = min(len(mixed["boxes"]), len(alone["boxes"]))
    assert (mixed["boxes"][:n] - alone["boxes"][:n]).abs().max() > 1.0
    torch.testing.assert_close(grouped["boxes"], alone["boxes"])
    torch.testing.assert_close(grouped["scores"], alone["scores"])


def test_options_are_built_into_the_model_not_set_on_it(tmp_path):
    weights = _weights(tmp_path)
    detector = load_detector(weights, InferenceOptions(max_det=7, merge="mean", device="cpu"))
    model = detector.model
    assert model.config["box_detections_per_img"] == 7 and model.config["box_merge"] == "mean"
    assert model.roi_heads.detections_per_img == 7 and model.roi_heads.merge == "mean"
    assert frcnn.load_model(weights).roi_heads.detections_per_img == 100
    tiled = load_detector(weights, InferenceOptions(tile=64, overlap=0.25, batch_size=3))
    assert isinstance(tiled, TiledDetector) and isinstance(tiled.inner, ModelDetector)
    assert (tiled.tile, tiled.overlap, tiled.batch_size) == (64, 0.25, 3)
    assert tiled.class_names == ["a", "b"] and tiled.detections_per_img == 100


def test_options_check_their_values_and_keywords(tmp_path):
    assert InferenceOptions(tta=True).tta == frcnn.defaults.TTA_SCALES
    assert InferenceOptions(tta=[1.0, 0.8]).tta == (1.0, 0.8)
    assert InferenceOptions(tile=64).images_per_batch == 1
    for bad, message in [
        ({"conf": 1.5}, "conf must be in"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"tile": 8}, "tile must be >= 32"),
        ({"merge": "median"}, "box merge 'median'"),
    ]:
        with pytest.raises(ValueError, match=message):
            InferenceOptions(**bad)
    with pytest.raises(TypeError, match=r"unknown keyword arguments \['thresh'\]"):
        frcnn.predict(_weights(tmp_path), [], thresh=0.3)


def test_the_threshold_is_the_model_files_unless_given(tmp_path):
    weights = _weights(tmp_path, conf=0.6)
    assert frcnn.load_model(weights).conf == 0.6
    image = _image(tmp_path / "x.png", 90, 120, 0)
    found = frcnn.predict(weights, [str(image)])[0]
    everything = frcnn.predict(weights, [str(image)], conf=0.0)[0]
    assert len(everything.scores) > len(found.scores)
    np.testing.assert_array_equal(found.scores, everything.scores[everything.scores >= 0.6])
    (tmp_path / "plain").mkdir()
    plain = _weights(tmp_path / "plain", conf=None)
    assert frcnn.load_model(plain).conf is None
    assert InferenceOptions().threshold(frcnn.load_model(plain)) == frcnn.defaults.CONF


def test_calibrated_uses_the_copy_calibrate_wrote_beside_the_weights(tmp_path, frcnn_log):
    weights = _weights(tmp_path)
    image = _image(tmp_path / "x.png", 90, 120, 0)
    beside = calibrated_path(weights)
    assert beside.name == "m.calibrated.safetensors"
    with pytest.raises(ValueError, match=f"{beside} does not exist: fit one with"):
        frcnn.predict(weights, [str(image)], calibrated=True)
    model = frcnn.load_model(weights)
    model.calibration = {"method": "temperature", "temperature": 2.0}
    frcnn.save_model(model, beside)
    raw = frcnn.predict(weights, [str(image)], conf=0.0)[0].scores
    mapped = frcnn.predict(weights, [str(image)], conf=0.0, calibrated=True)[0].scores
    assert any(str(beside) in line for line in frcnn_log)
    logit = np.log(raw / (1 - raw))
    np.testing.assert_allclose(mapped, 1 / (1 + np.exp(-logit / 2.0)), rtol=1e-4)


def test_old_positional_calls_get_a_clear_message(tmp_path):
    weights = _weights(tmp_path)
    image = _image(tmp_path / "x.png", 90, 120, 0)
    with pytest.raises(TypeError, match=r"got float 0.3: pass the other arguments by keyword"):
        frcnn.predict(weights, [str(image)], 0.3)


def test_drawn_images_keep_their_format_and_say_their_threshold(tmp_path, frcnn_log):
    weights = _weights(tmp_path, conf=0.6)
    png = _image(tmp_path / "a.png", 90, 120, 0)
    jpg = tmp_path / "b.jpg"
    Image.open(_image(tmp_path / "b.png", 60, 80, 1)).save(jpg)
    frcnn.predict(weights, [str(png), str(jpg)], out=tmp_path / "o", save_images=True)
    drawn = sorted(p.name for p in (tmp_path / "o" / "images").iterdir())
    assert drawn == ["a.png", "b.jpg"]
    assert Image.open(tmp_path / "o" / "images" / "a.png").format == "PNG"
    assert any("drew 2 images (boxes with score >= 0.6)" in m for m in frcnn_log)
    assert not [p for p in (tmp_path / "o").rglob("*.tmp")]


def test_counts_agree_with_their_nouns():
    from frcnn.words import count

    assert [count(1, "detection"), count(0, "detection"), count(2, "detection")] == [
        "1 detection",
        "0 detections",
        "2 detections",
    ]
    assert [count(1, "box"), count(3, "box"), count(2, "class"), count(1, "image")] == [
        "1 box",
        "3 boxes",
        "2 classes",
        "1 image",
    ]
