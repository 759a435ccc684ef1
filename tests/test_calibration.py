"""Calibration of detection scores: reliability, ECE, temperature and isotonic maps."""

import numpy as np
import pytest

from frcnn.evaluation import evaluate_detections
from frcnn.evaluation.calibration import apply_calibration, fit_calibration, reliability


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_perfectly_calibrated_scores_have_ece_near_zero():
    rng = np.random.default_rng(0)
    scores = rng.random(200_000)
    correct = rng.random(len(scores)) < scores
    r = reliability(scores, correct)
    assert r.ece < 0.005
    np.testing.assert_allclose(r.precision, r.score, atol=0.01)
    assert r.count.sum() == len(scores)


def test_hand_computed_ece():
    # Bin [0.9, 1.0]: scores 0.9 and 0.95, one correct: gap |0.925 - 0.5|; bin [0.1, 0.2): 0.1,
    # wrong: gap 0.1. ECE = (2 * 0.425 + 1 * 0.1) / 3.
    r = reliability([0.9, 0.95, 0.1], [True, False, False])
    assert r.ece == pytest.approx((2 * 0.425 + 0.1) / 3)


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_known_miscalibration_is_recovered(method):
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, 50_000)
    scores = _sigmoid(z)  # over-confident: the truth is sigmoid(z / 2)
    correct = rng.random(len(z)) < _sigmoid(z / 2)
    before = reliability(scores, correct).ece
    cal = fit_calibration(scores, correct, method)
    if method == "temperature":
        assert cal["temperature"] == pytest.approx(2.0, rel=0.05)
    after = reliability(apply_calibration(cal, scores), correct).ece
    assert before > 0.05 and after < 0.01
    # The order of the scores, and so AP, is kept.
    order = np.argsort(scores)
    assert (np.diff(apply_calibration(cal, scores[order])) >= 0).all()


def test_calibrated_scores_keep_map():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_metrics import _dataset_and_predictions

    ds, preds = _dataset_and_predictions()
    before = evaluate_detections(ds, preds)
    scores = np.concatenate([before.predictions[p["image_id"]]["scores"] for p in preds])
    cal = fit_calibration(
        scores, np.random.default_rng(0).random(len(scores)) < scores**2, "isotonic"
    )
    mapped = [{**p, "scores": apply_calibration(cal, p["scores"])} for p in preds]
    after = evaluate_detections(ds, mapped)
    assert after.coco == pytest.approx(before.coco, abs=1e-12)


def test_calibration_needs_both_outcomes():
    with pytest.raises(ValueError, match="correct and wrong"):
        fit_calibration(np.array([0.5, 0.6]), np.array([True, True]))


def test_calibrate_command_writes_a_model_whose_predictions_are_calibrated(
    tmp_path, monkeypatch, tiny_model, capsys
):
    import frcnn
    import frcnn.api
    from frcnn.cli import main
    from frcnn.data.sources import read_dataset
    from frcnn.data.synth import write_synth

    write_synth(tmp_path / "val", 6, 96, seed=1)
    ds = read_dataset(tmp_path / "val")
    names = ds.class_names
    model = frcnn.build_model("resnet18_fpn", len(names) + 1, **__import__("conftest").TINY)
    weights = frcnn.save_model(model, tmp_path / "m.safetensors", class_names=names)
    rng = np.random.default_rng(0)

    def fake_predictions(
        model, ds, *args, **kwargs
    ):  # objects found (with some shifted) and scored
        out = []
        for rec in ds.images:
            shift = np.where(rng.random((len(rec.boxes), 1)) < 0.4, 30.0, 0.0)
            out.append(
                {
                    "image_id": rec.image_id,
                    "boxes": rec.boxes + shift,
                    "scores": rng.uniform(0.5, 1.0, len(rec.boxes)),
                    "labels": rec.labels,
                }
            )
        return out

    monkeypatch.setattr(frcnn.api, "predict_dataset", fake_predictions)
    out = tmp_path / "cal.safetensors"
    assert (
        main(
            [
                "calibrate",
                "--weights",
                str(weights),
                "--data",
                str(tmp_path / "val"),
                "--out",
                str(out),
                "--method",
                "temperature",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "temperature" in printed and "->" in printed and str(out) in printed
    loaded = frcnn.load_model(out)
    assert (
        loaded.calibration["method"] == "temperature"
        and frcnn.load_model(weights).calibration is None
    )
    # predict --calibrated maps the model's own scores by the stored calibration.
    image = ds.images[0].path
    raw = frcnn.predict(out, [str(image)], conf=0.0)[0].scores
    mapped = frcnn.predict(out, [str(image)], conf=0.0, calibrated=True)[0].scores
    np.testing.assert_allclose(
        mapped, apply_calibration(loaded.calibration, raw), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="no score calibration"):
        frcnn.predict(weights, [str(image)], calibrated=True)
    # The README's commands as written: calibrate beside the weights, then eval --calibrated
    # on the same weights finds the calibrated copy.
    assert main(["calibrate", "--weights", str(weights), "--data", str(tmp_path / "val")]) == 0
    assert (tmp_path / "m.calibrated.safetensors").is_file()
    capsys.readouterr()
    args = ["eval", "--weights", str(weights), "--data", str(tmp_path / "val"), "--calibrated"]
    assert main(args) == 0 and "calibration: ECE" in capsys.readouterr().out


def test_evaluating_calibrated_scores_keeps_map_exactly(tmp_path):
    """A calibration with flat steps maps many scores to nearly one value; the ranking (and
    so every COCO number) must not change."""
    import frcnn
    from frcnn.data.synth import write_synth

    write_synth(tmp_path / "val", 6, 96, seed=1)
    names = frcnn.read_dataset(tmp_path / "val").class_names
    torch = __import__("torch")
    torch.manual_seed(0)
    tiny = {**__import__("conftest").TINY, "box_score_thresh": 0.0}
    model = frcnn.build_model("resnet18_fpn", len(names) + 1, **tiny)
    weights = frcnn.save_model(model, tmp_path / "m.safetensors", class_names=names)
    model.calibration = {"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.2, 0.2, 0.9]}
    frcnn.save_model(model, tmp_path / "m.calibrated.safetensors")
    raw = frcnn.evaluate(weights, tmp_path / "val", conf=0.0)
    mapped = frcnn.evaluate(weights, tmp_path / "val", conf=0.0, calibrated=True)
    assert raw.coco["AP50"] > 0 and mapped.coco == raw.coco
    tiled = frcnn.evaluate(weights, tmp_path / "val", conf=0.0, calibrated=True, tile=64)
    assert tiled.num_images == 6  # tiles of calibrated (float64) scores merge too
