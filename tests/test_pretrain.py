"""frcnn pretrain-backbone: class-per-subfolder data, the schedule by hand, and backbone
weights that load into a detector with nothing missing."""

import csv

import pytest
import torch
from PIL import Image

import frcnn
from frcnn.cli import main
from frcnn.data.synth import write_synth_classes
from frcnn.pretrain.folder import read_image_folder
from frcnn.pretrain.loop import PretrainConfig, lr_at


def _folder(root, counts):
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8)).save(root / name / f"{i}.png")


def test_held_out_images_are_taken_from_every_class(tmp_path):
    _folder(tmp_path / "flat", {"cat": 10, "dog": 5, "owl": 2})
    splits = read_image_folder(tmp_path / "flat", val_split=0.2, seed=0)
    assert splits.classes == ["cat", "dog", "owl"] and splits.held_out
    val = [label for _, label in splits.val]
    assert sorted(val) == [0, 0, 1, 2]  # 20% of 10, of 5, and at least one of 2
    assert len(splits.train) == 13
    assert not {p for p, _ in splits.train} & {p for p, _ in splits.val}


def test_train_and_val_folders_are_the_splits(tmp_path):
    _folder(tmp_path / "ds" / "train", {"a": 3, "b": 2})
    _folder(tmp_path / "ds" / "val", {"b": 1})
    splits = read_image_folder(tmp_path / "ds")
    assert not splits.held_out and len(splits.train) == 5
    assert [label for _, label in splits.val] == [1]
    _folder(tmp_path / "bad" / "train", {"a": 1, "b": 1})
    _folder(tmp_path / "bad" / "val", {"c": 1})
    with pytest.raises(ValueError, match=r"classes \['c'\] have no training folder"):
        read_image_folder(tmp_path / "bad")
    _folder(tmp_path / "one", {"a": 2})
    with pytest.raises(ValueError, match="found 1 class folder"):
        read_image_folder(tmp_path / "one")
    _folder(tmp_path / "empty", {"a": 2, "b": 0})
    with pytest.raises(ValueError, match=r"without images: \['b'\]"):
        read_image_folder(tmp_path / "empty")


def test_schedule_by_hand():
    cfg = PretrainConfig(data="", backbone="resnet18", epochs=6, lr=0.1)  # step every 2 epochs
    assert lr_at(cfg, 0, 0, 10) == pytest.approx(0.01)  # warm-up from lr / 10
    assert lr_at(cfg, 0, 5, 10) == pytest.approx(0.1 * (0.1 + 0.9 * 0.5))
    assert lr_at(cfg, 1, 0, 10) == pytest.approx(0.1)
    assert lr_at(cfg, 2, 3, 10) == pytest.approx(0.01)
    assert lr_at(cfg, 5, 9, 10) == pytest.approx(0.001)
    one = PretrainConfig(data="", backbone="resnet18", epochs=1, lr=0.1)
    assert lr_at(one, 0, 0, 10) == pytest.approx(0.1)  # no warm-up in a one-epoch run


@pytest.mark.parametrize(
    ("backbone", "model"),
    [
        ("resnet18", "resnet18_fpn"),
        ("cspmirrornet_pan", "cspmirrornet_pan"),
        ("efficientnet_b3", "efficientnet_b3_fpn"),
    ],
)
def test_pretrained_weights_load_into_the_detector(tmp_path, frcnn_log, backbone, model):
    write_synth_classes(tmp_path / "cls", 25, size=32, seed=1)
    argv = [
        "pretrain-backbone",
        "--data",
        str(tmp_path / "cls"),
        "--backbone",
        backbone,
        "--epochs",
        "2",
        "--img-size",
        "32",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(argv) == 0
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {
        "results.csv",
        "results.png",
        "log.txt",
        "config.yaml",
        "weights",
    }
    with open(run / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(0 <= float(r["accuracy"]) <= 1 for r in rows)
    weights = run / "weights" / "best.safetensors"
    from safetensors.torch import load_file

    saved = load_file(weights)
    frcnn_log.clear()
    detector = frcnn.build_model(model, 3, pretrained_backbone=str(weights))
    report = [m for m in frcnn_log if "backbone weights:" in m]
    assert len(report) == 1 and "missing" not in report[0] and "unexpected" not in report[0]
    body = detector.backbone.body.state_dict()
    name = next(k for k in saved if k.endswith("weight") and saved[k].ndim == 4)
    torch.testing.assert_close(body[name], saved[name])


def test_settings_out_of_range_are_named():
    with pytest.raises(ValueError, match="optimizer must be sgd or adamw, got 'adam'"):
        PretrainConfig(data="", backbone="resnet18", optimizer="adam").validate()
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        PretrainConfig(data="", backbone="resnet18", epochs=0).validate()
