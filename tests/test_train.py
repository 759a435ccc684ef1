"""End-to-end training, evaluation and prediction on a tiny generated dataset."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import frcnn
from frcnn.cli import main
from frcnn.config import load_config
from frcnn.data.synth import write_synth
from frcnn.engine.loop import NonFiniteLossError
from frcnn.io.atomic import atomic_write

# A tiny detector and a short run: every stage of the pipeline, in seconds.
TINY_RUN = [
    "model.name=resnet18_fpn",
    "model.args.fpn_channels=16",
    "model.args.representation_size=32",
    "model.args.norm=gn",
    "model.args.rpn_pre_nms_top_n_train=200",
    "model.args.rpn_post_nms_top_n_train=100",
    "model.args.rpn_pre_nms_top_n_test=100",
    "model.args.rpn_post_nms_top_n_test=50",
    "model.args.box_batch_size_per_image=32",
    "model.args.box_score_thresh=0.0",
    "model.args.anchor_sizes=[[16], [32], [64], [128], [256]]",
    "data.img_size=96",
    "data.batch_size=4",
    "optim.lr=0.01",
    "schedule.warmup_epochs=0",
    "run.progress=false",
]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_synth(root / "train", 12, 96, seed=0)
    write_synth(root / "val", 4, 96, seed=1)
    return root


def test_cli_train_eval_predict(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(tiny_data / "train"),
        "--val",
        str(tiny_data / "val"),
        "--epochs",
        "2",
        "--out",
        str(out),
        *TINY_RUN,
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "run folder" in printed and "validation: mAP" in printed
    for name in (
        "config.yaml",
        "results.csv",
        "log.txt",
        "metrics.json",
        "per_class.csv",
        "results.png",
        "PR_curve.png",
        "F1_curve.png",
        "confusion_matrix.png",
        "val_predictions.jpg",
        "labels.png",
        "errors.png",
        "reliability.png",
        "per_size.csv",
        "report.html",
    ):
        assert (out / name).is_file(), name
    assert "Learning curves" in (out / "report.html").read_text()
    for name in ("best.safetensors", "last.safetensors", "last.state.pt"):
        assert (out / "weights" / name).is_file(), name
    assert len(list((out / "weights").glob("epoch*.safetensors"))) == 2  # top-k (k = 3) of 2 epochs
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert {
        "loss_objectness",
        "loss_classifier",
        "lr",
        "mAP",
        "mAP50",
        "mAP75",
        "precision",
        "recall",
        "F1",
        "score",
        "seconds",
    } <= set(rows[0])
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "AP",
        "AP50",
        "AP75",
        "APs",
        "APm",
        "APl",
        "AR1",
        "AR10",
        "AR100",
        "ARs",
        "ARm",
        "ARl",
    ):
        assert -1 <= metrics[key] <= 1
    assert 0 <= metrics["score"] <= 1 and len(metrics["per_class"]) == 5
    assert (
        load_config(out / "config.yaml").model.args["fpn_channels"] == 16
    )  # the saved config rebuilds the run

    model = frcnn.load_model(out / "weights" / "best.safetensors")
    assert model.class_names == ["rectangle", "ellipse", "triangle", "cross", "ring"]

    assert (
        main(
            [
                "eval",
                "--weights",
                str(out / "weights" / "best.safetensors"),
                "--data",
                str(tiny_data / "val"),
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "Average Precision" in text and "mAP50-95" in text and "F1" in text
    assert "errors (TIDE" in text and "calibration: ECE" in text and "per size" in text
    assert (tmp_path / "ev" / "report.html").is_file()
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["AR100"] >= 0

    # predict on an image of another size: boxes are in that image's own coordinates
    from PIL import Image

    big = tmp_path / "big.png"
    Image.open(tiny_data / "val" / "images" / "000001.png").resize((300, 200)).save(big)
    assert (
        main(
            [
                "predict",
                "--weights",
                str(out / "weights" / "last.safetensors"),
                str(big),
                "--out",
                str(tmp_path / "pr"),
                "--conf",
                "0",
                "--save-images",
            ]
        )
        == 0
    )
    preds = json.loads((tmp_path / "pr" / "predictions.json").read_text())
    assert preds[0]["width"] == 300 and preds[0]["height"] == 200
    boxes = np.array([d["box"] for d in preds[0]["detections"]])
    assert len(boxes) > 0 and boxes[:, 2].max() <= 300 and boxes[:, 3].max() <= 200
    assert boxes[:, 2].max() > 96  # mapped back beyond the 96 px the model saw
    assert (tmp_path / "pr" / "images" / "big.png").is_file()  # in its input's format


def test_resume_gives_the_same_weights_as_a_straight_run(tiny_data, tmp_path):
    common = [
        "--data",
        str(tiny_data / "train"),
        "--val",
        str(tiny_data / "val"),
        *TINY_RUN,
        "run.deterministic=true",
        "data.augment=default",
    ]
    assert main(["train", "--epochs", "4", "--out", str(tmp_path / "straight"), *common]) == 0
    # the same 4-epoch schedule, this invocation stopped after 2 epochs, then resumed
    assert (
        main(
            [
                "train",
                "--epochs",
                "4",
                "--out",
                str(tmp_path / "split"),
                *common,
                "run.stop_after_epochs=2",
            ]
        )
        == 0
    )
    assert main(["train", "--resume", "--out", str(tmp_path / "split")]) == 0
    a = load_file(str(tmp_path / "straight" / "weights" / "last.safetensors"))
    b = load_file(str(tmp_path / "split" / "weights" / "last.safetensors"))
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    with (tmp_path / "split" / "results.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3", "4"]


def test_nan_loss_stops_with_a_message_naming_step_and_terms(tiny_data, tmp_path):
    cfg = load_config(
        None,
        [*TINY_RUN, "optim.lr=1e30", "optim.name=sgd"],
        **{
            "data.train": str(tiny_data / "train"),
            "run.out": str(tmp_path / "nan"),
            "schedule.epochs": 3,
        },
    )
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss at epoch \d+, step \d+: loss_objectness="
    ):
        frcnn.train(cfg)
    cfg.run.nan_policy = "skip"
    cfg.run.max_nan_skips = 2
    cfg.run.out = str(tmp_path / "nan-skip")
    with pytest.raises(NonFiniteLossError, match="more than 2 skipped"):
        frcnn.train(cfg)


WRITER = textwrap.dedent(
    """
    import sys, torch
    from frcnn.io.checkpoint import atomic_torch_save
    big = {"w": torch.randn(4_000_000), "step": 0}
    print("ready", flush=True)
    step = 0
    while True:
        step += 1
        big["step"] = step
        atomic_torch_save(big, sys.argv[1])
    """
)


def test_killed_writer_never_leaves_a_corrupt_last(tmp_path):
    from frcnn.io.checkpoint import atomic_torch_save, load_training_state

    target = tmp_path / "last.state.pt"
    atomic_torch_save({"w": torch.zeros(4_000_000), "step": 0}, target)
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = load_training_state(target)  # loads: the old or a complete new file
        assert state["w"].shape == (4_000_000,) and isinstance(state["step"], int)
    leftovers = [p for p in tmp_path.iterdir() if p.name != "last.state.pt"]
    assert all(p.name.startswith(".last.state.pt.") for p in leftovers)  # only temp files


def test_config_errors_suggest_the_right_key(tmp_path):
    with pytest.raises(KeyError, match="Did you mean 'lr'"):
        load_config(None, ["optim.lrr=0.1"])
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("optim:\n  lr: 0.05\nschedule:\n  epochs: 3\n")
    cfg = load_config(cfg_file, ["schedule.epochs=4"])
    assert cfg.optim.lr == 0.05 and cfg.schedule.epochs == 4
    cfg_file.write_text("optimizer:\n  lr: 0.05\n")
    with pytest.raises(KeyError, match="Did you mean 'optim'"):
        load_config(cfg_file)
    assert main(["train", "--data", "x", "optim.lrr=1"]) == 2


def test_demo_command_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--out", str(out), "--minutes", "0.05", "--n-train", "16", "--n-val", "4"])
        == 0
    )
    text = capsys.readouterr().out
    assert "held-out images: mAP50" in text and "predictions:" in text
    assert (out / "train" / "metrics.json").is_file() and (
        out / "predictions" / "predictions.json"
    ).is_file()
    assert len(list((out / "predictions" / "images").glob("*.png"))) == 4


@pytest.mark.parametrize("fmt", ["yolo", "voc", "csv"])
def test_train_and_eval_on_each_format(tiny_data, tmp_path, fmt):
    converted = tmp_path / fmt
    assert main(["data", "convert", str(tiny_data / "train"), "--to", fmt, str(converted)]) == 0
    out = tmp_path / "run"
    assert (
        main(["train", "--data", str(converted), "--epochs", "1", "--out", str(out), *TINY_RUN])
        == 0
    )
    result = frcnn.evaluate(out / "weights" / "last.safetensors", converted)
    assert 0 <= result.coco["AP50"] <= 1 and len(result.per_class) == 5


def test_a_kill_between_checkpoint_writes_resumes_consistently(tiny_data, tmp_path):
    common = [
        "--data",
        str(tiny_data / "train"),
        "--val",
        str(tiny_data / "val"),
        *TINY_RUN,
        "run.deterministic=true",
    ]
    assert main(["train", "--epochs", "2", "--out", str(tmp_path / "straight"), *common]) == 0
    split = tmp_path / "split"
    args = ["train", "--epochs", "2", "--out", str(split), *common, "run.stop_after_epochs=1"]
    assert main(args) == 0
    # Killed while epoch 2 (the last) was being saved: its results row and last.safetensors
    # are written (atomically, as frcnn writes), its training state is not (a half-written
    # temporary file is left behind).
    weights = split / "weights"
    atomic_write(
        weights / "last.safetensors",
        lambda tmp: shutil.copyfile(tmp_path / "straight" / "weights" / "last.safetensors", tmp),
    )
    with (split / "results.csv").open() as f:
        f.readline()  # the header
        row = f.readline()
    with (split / "results.csv").open("a") as f:
        f.write("2" + row[row.index(",") :])
    orphan = weights / ".last.state.pt.k1ll3d.tmp"
    orphan.write_bytes(b"\0" * 1_000_000)
    assert main(["train", "--resume", "--out", str(split)]) == 0
    assert not orphan.exists()
    a = load_file(str(tmp_path / "straight" / "weights" / "last.safetensors"))
    b = load_file(str(weights / "last.safetensors"))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    with (split / "results.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]


@pytest.mark.parametrize("model", ["efficientnet_b3_fpn", "swin_t_fpn", "cspmirrornet_pan"])
def test_new_families_train_eval_and_predict_from_the_command_line(tiny_data, tmp_path, model):
    out = tmp_path / "run"
    argv = [
        "train",
        "--data",
        str(tiny_data / "train"),
        "--val",
        str(tiny_data / "val"),
        "--epochs",
        "1",
        "--model",
        model,
        "--out",
        str(out),
        *TINY_RUN[1:],
    ]
    assert main(argv) == 0
    weights = out / "weights" / "best.safetensors"
    assert frcnn.load_model(weights).config["name"] == model
    assert main(["eval", "--weights", str(weights), "--data", str(tiny_data / "val")]) == 0
    assert (
        main(
            [
                "predict",
                "--weights",
                str(weights),
                str(tiny_data / "val" / "images"),
                "--out",
                str(tmp_path / "pred"),
            ]
        )
        == 0
    )
    assert (tmp_path / "pred" / "predictions.json").exists()
