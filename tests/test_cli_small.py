"""Small command-line courtesies: --version, broken pipes, --device, foreign key hints."""

import subprocess
import sys

import pytest

from frcnn import __version__
from frcnn.cli import build_parser, main
from frcnn.config import load_config


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"frcnn {__version__}"


def test_a_closed_pipe_is_not_an_error(tmp_path):
    from frcnn.data.synth import write_synth

    write_synth(tmp_path, 20, 64, seed=0)
    cmd = [sys.executable, "-m", "frcnn", "data", "check", str(tmp_path), "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # like `| head` that has read enough
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize(
    ("key", "frcnn_key"),
    [("epochs", "schedule.epochs"), ("imgsz", "data.img_size"), ("batch", "data.batch_size")],
)
def test_foreign_keys_point_to_ours(key, frcnn_key):
    with pytest.raises(KeyError, match=f"unknown key '{key}'. Did you mean '{frcnn_key}'"):
        load_config(None, [f"{key}=3"])


def test_train_device_option():
    args = build_parser().parse_args(["train", "--device", "cpu"])
    from frcnn.cli.train import OPTION_KEYS

    assert args.device == "cpu" and OPTION_KEYS["device"] == "run.device"
    assert load_config(None, [], **{OPTION_KEYS["device"]: args.device}).run.device == "cpu"


def test_eval_prints_the_coco_summary_without_progress_lines(tmp_path, capsys):
    import json

    from frcnn.data.synth import write_synth

    ann = write_synth(tmp_path / "gt", 3, 64, seed=0)
    gt = json.loads(ann.read_text())
    results = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 0.9,
        }
        for a in gt["annotations"]
    ]
    (tmp_path / "res.json").write_text(json.dumps(results))
    assert (
        main(["-q", "eval", "--data", str(ann), "--predictions", str(tmp_path / "res.json")]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all")
    assert "DONE" not in out and "Evaluate annotation type" not in out


STARTUP = """
import sys, time
t = time.perf_counter()
from frcnn.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "torchvision", "albumentations", "cv2") if m in sys.modules)
print("HEAVY", heavy)
"""


@pytest.mark.parametrize(
    "argv", [["--help"], ["train", "--help"], ["models"], ["train", "--epochs", "x"]]
)
def test_help_models_and_argument_errors_import_no_torch(argv):
    out = subprocess.run(
        [sys.executable, "-c", STARTUP.format(argv=argv)], capture_output=True, text=True
    ).stdout
    assert "HEAVY []" in out, out[-500:]


def test_a_bad_model_name_reads_no_data_and_creates_no_folder(tmp_path, monkeypatch, capsys):
    import frcnn.engine.data as data_module

    def no_reading(*a, **k):
        raise AssertionError("data was read before the model name was checked")

    monkeypatch.setattr(data_module, "read_dataset", no_reading)
    monkeypatch.setattr("frcnn.engine.trainer.load_streamed", no_reading)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    code = main(["train", "--data", "data", "--model", "resnet5_fpn", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown model 'resnet5_fpn'" in err and "resnet50_fpn" in err
    assert not (tmp_path / "runs").exists()
    code = main(["train", "--data", "data", "model.args.min_sise=300"])
    assert code == 2 and "min_size" in capsys.readouterr().err
    assert main(["train", "--data", "nowhere"]) == 2 and not (tmp_path / "runs").exists()
    assert "data.train: dataset not found: nowhere" in capsys.readouterr().err
    # a Hugging Face name is not a path: it gets as far as reading (stopped here)
    with pytest.raises(AssertionError, match="data was read"):
        main(["--debug", "train", "--data", "hf:someone/boxes"])


def test_models_prints_the_stored_table_for_every_model(capsys):
    import frcnn
    from frcnn.modeling.catalog import MODELS, model_table

    table = model_table()["models"]
    assert set(table) == set(MODELS)  # benchmarks/models.py --write after adding a model
    model = frcnn.build_model("mobilenet_v3_large_320_fpn", 91)
    assert table["mobilenet_v3_large_320_fpn"]["params"] == sum(
        p.numel() for p in model.parameters()
    )
    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    row = next(line for line in out if line.startswith("mobilenet_v3_large_320_fpn"))
    assert row.split()[1:4] == ["mobilenet_v3_large", "19.4M", "2.9"]


def test_recipes_by_name(capsys):
    from frcnn.demo import DEMO_RECIPE

    # the demo's recipe, written out as overrides (bf16 where native, fewer proposals and
    # RoIs, lr 1.5e-3: benchmarks/demo_quality.py, README "The demo's quality bar")
    before = [
        "model.name=resnet18_fpn",
        "model.args.fpn_channels=64",
        "model.args.representation_size=256",
        "model.args.norm=bn",
        "model.args.anchor_sizes=[[16], [32], [64], [128], [256]]",
        "model.args.rpn_pre_nms_top_n_train=500",
        "model.args.rpn_post_nms_top_n_train=250",
        "model.args.rpn_pre_nms_top_n_test=500",
        "model.args.rpn_post_nms_top_n_test=300",
        "model.args.box_batch_size_per_image=64",
        "data.img_size=256",
        "data.batch_size=4",
        "data.augment=light",
        "optim.name=adamw",
        "optim.lr=0.0015",
        "optim.weight_decay=0.0001",
        "schedule.policy=cosine",
        "schedule.warmup_epochs=0.5",
        "schedule.epochs=100",
        "eval.conf=0.5",
        "run.amp=auto",
    ]
    assert load_config(DEMO_RECIPE).to_dict() == load_config(None, before).to_dict()
    tv = load_config("tv-default", ["data.batch_size=4"])
    assert tv.model.name == "resnet50_fpn" and tv.schedule.milestones == [16, 22]
    assert tv.data.batch_size == 4  # overrides still win
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cpu-fast") and "tv-default" in out
    with pytest.raises(FileNotFoundError, match="recipes: cpu-fast, finetune, tv-default"):
        load_config("cpu-slow")


def test_a_bug_in_frcnn_says_so_and_keeps_its_traceback(tmp_path, monkeypatch, capsys):
    import re

    import frcnn.data.check
    from frcnn.data.synth import write_synth

    write_synth(tmp_path / "d", 2, 64, seed=0)

    def broken(*args, **kwargs):
        return {}["no such key"]  # a KeyError from frcnn's own code: a bug, not the user's

    monkeypatch.setattr(frcnn.data.check, "check_dataset", broken)
    assert main(["data", "check", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "this is a bug in frcnn" in err
    assert "KeyError" in err and "attached" in err
    report = re.search(r"The traceback is in (\S+):", err).group(1)
    text = open(report).read()
    assert f"command: frcnn data check {tmp_path / 'd'}" in text
    assert "Traceback" in text and "in broken" in text and "frcnn " in text
    # An error about the user's input stays one line with exit status 2, no report.
    assert main(["data", "check", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("frcnn data check: error: dataset not found") and "internal" not in err


def test_a_failed_command_leaves_no_empty_output_folder(tmp_path):
    import numpy as np
    from PIL import Image

    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    for command in (
        ["predict", "--weights", str(tmp_path / "missing.safetensors"), str(image)],
        ["eval", "--weights", str(tmp_path / "missing.safetensors"), "--data", str(tmp_path)],
    ):
        out = tmp_path / f"out_{command[0]}"
        assert main([*command, "--out", str(out)]) == 2
        assert not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()  # a folder the user made is never removed
    assert (
        main(["predict", "--weights", str(tmp_path / "none"), str(image), "--out", str(kept)]) == 2
    )
    assert kept.is_dir()
