import pytest
import torch


def _target(boxes, labels=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    if labels is None:
        labels = torch.ones(len(boxes), dtype=torch.int64)
    return {"boxes": boxes, "labels": labels}


@pytest.mark.parametrize(
    "target, error, message",
    [
        (
            _target([[10, 5, 10, 40]]),
            ValueError,
            r"image 1: box 0 has zero or negative width \[10, 5, 10, 40\]",
        ),
        (
            _target([[0, 0, 5, 5], [1, 9, 4, 3]]),
            ValueError,
            r"image 1: box 1 has zero or negative height",
        ),
        (
            _target([[0, 0, float("nan"), 5]]),
            ValueError,
            r"image 1: box 0 has non-finite coordinates",
        ),
        (
            {"boxes": torch.zeros(2, 5), "labels": torch.ones(2, dtype=torch.int64)},
            ValueError,
            r"image 1: boxes must have shape \[N, 4\]",
        ),
        (
            {
                "boxes": torch.zeros(0, 4, dtype=torch.int64),
                "labels": torch.zeros(0, dtype=torch.int64),
            },
            TypeError,
            r"image 1: boxes must be a float tensor",
        ),
        (
            _target([[0, 0, 5, 5]], torch.tensor([1.0])),
            TypeError,
            r"image 1: labels must be an int64 tensor",
        ),
        (
            _target([[0, 0, 5, 5]], torch.tensor([0])),
            ValueError,
            r"image 1: box 0 has label 0, outside 1..2",
        ),
        (_target([[0, 0, 5, 5]], torch.tensor([3])), ValueError, r"image 1: box 0 has label 3"),
        (
            {"labels": torch.ones(1, dtype=torch.int64)},
            ValueError,
            r"image 1: target has no 'boxes'",
        ),
    ],
)
def test_invalid_targets_name_image_and_box(tiny_model, target, error, message):
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
    with pytest.raises(error, match=message):
        tiny_model(images, [_target([[1, 1, 20, 20]]), target])


def test_training_without_targets(tiny_model):
    with pytest.raises(ValueError, match="targets are required in training mode"):
        tiny_model([torch.rand(3, 64, 64)])


@pytest.mark.parametrize(
    "images, error, message",
    [
        (torch.rand(2, 3, 64, 64), TypeError, "pass list"),
        ([torch.rand(64, 64)], ValueError, "image 0: expected a CHW tensor"),
        (
            [torch.rand(3, 64, 64), torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
            TypeError,
            "image 1: expected a float tensor",
        ),
        ([torch.rand(64, 64, 3)], ValueError, "image 0: expected 1 or 3 channels"),
    ],
)
def test_invalid_images(tiny_model, images, error, message):
    tiny_model.eval()
    with pytest.raises(error, match=message):
        tiny_model(images)


def test_eval_run_scores_exactly_the_recorded_validation_images(tmp_path, monkeypatch):
    import json

    from test_train import TINY_RUN

    import frcnn
    import frcnn.api as api
    from frcnn.data.synth import write_synth

    write_synth(tmp_path / "data", 6, 96, seed=0)
    out = tmp_path / "run"
    frcnn.train(
        None,
        TINY_RUN,
        **{
            "data.train": str(tmp_path / "data"),
            "data.val_split": 0.34,
            "schedule.epochs": 1,
            "run.out": str(out),
        },
    )
    recorded = json.loads((out / "val_split.json").read_text())
    ids = sorted(e["image_id"] for e in recorded["images"])
    assert len(ids) == 2 and recorded["held_out"] is True
    seen = []
    real = api.evaluate_detections
    monkeypatch.setattr(
        api, "evaluate_detections", lambda ds, *a, **k: seen.append(ds) or real(ds, *a, **k)
    )
    result = frcnn.evaluate(None, None, run=out)
    assert sorted(r.image_id for r in seen[0].images) == ids and result.num_images == 2
    final = json.loads((out / "metrics.json").read_text())
    assert final["AP50"] == pytest.approx(result.coco["AP50"], abs=5e-7)


def test_a_progressively_resized_run_scores_its_model_files_at_their_size(tmp_path):
    """Each epoch's model file carries the size that epoch trained and was scored at, so
    ``eval --run`` gives the run's own numbers; and every count is at the run's threshold."""
    import json

    from test_train import TINY_RUN

    import frcnn
    from frcnn.data.synth import write_synth

    write_synth(tmp_path / "data", 6, 96, seed=0)
    out = tmp_path / "run"
    frcnn.train(
        None,
        [*TINY_RUN, "data.img_sizes=[[0, 96], [1, 64]]", "eval.conf=0.4"],
        **{"data.train": str(tmp_path / "data"), "schedule.epochs": 2, "run.out": str(out)},
    )
    last = frcnn.load_model(out / "weights" / "last.safetensors")
    assert last.config["min_size"] == last.config["max_size"] == 64 and last.conf == 0.4
    assert frcnn.load_model(out / "weights" / "epoch1.safetensors").config["min_size"] == 96
    final = json.loads((out / "metrics.json").read_text())
    again = frcnn.evaluate(None, None, run=out)
    for key, value in again.coco.items():
        assert final[key] == pytest.approx(value, abs=5e-7), key
    assert final["conf"] == again.conf == 0.4
    # The run's model file, evaluated on its own: the same threshold.
    best = frcnn.evaluate(out / "weights" / "best.safetensors", tmp_path / "data")
    assert best.conf == 0.4
