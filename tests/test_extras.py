"""Optional dependencies are optional: a command whose extra is missing names it."""

import sys

import numpy as np
import pytest
import torch
from conftest import TINY
from PIL import Image

import frcnn
from frcnn.cli import main
from frcnn.errors import MissingDependencyError, require


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    model = frcnn.build_model("resnet18_fpn", 3, **TINY)
    return frcnn.save_model(model, tmp_path / "m.safetensors", class_names=["a", "b"])


def _hide(monkeypatch, *modules):
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now fails


def test_require_names_the_extra(monkeypatch):
    _hide(monkeypatch, "optuna")
    with pytest.raises(MissingDependencyError, match=r"pip install 'frcnn\[tune\]'"):
        require("optuna", "tune", "frcnn tune")
    assert require("numpy", "x", "y") is np


def test_an_ensemble_without_ensemble_boxes_says_which_extra(weights, tmp_path, monkeypatch):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(image)
    _hide(monkeypatch, "ensemble_boxes")
    with pytest.raises(MissingDependencyError, match=r"frcnn\[ensemble\]"):
        frcnn.predict([weights, weights], [str(image)])
    # One model, or soft-NMS (frcnn's own), needs no extra.
    assert frcnn.predict(weights, [str(image)])
    frcnn.predict([weights, weights], [str(image)], ensemble=frcnn.MergeOptions("soft-nms"))


def test_tune_without_optuna_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    frcnn.write_synth(tmp_path / "d", 4, 64, seed=0)
    _hide(monkeypatch, "optuna")
    code = main(["tune", "--data", str(tmp_path / "d"), "--trials", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (
        "frcnn tune: error: frcnn tune needs optuna, which is not installed: "
        "pip install 'frcnn[tune]'"
    )


# The packages the extras install, made invisible: the path finder no longer sees them (as
# on a machine where they were never installed; probes such as find_spec get None).
BLOCKER = """
import importlib.machinery as m
import sys
BLOCKED = {"optuna", "ensemble_boxes", "onnx", "onnxruntime", "onnxscript", "datasets",
           "tensorboard", "mlflow", "wandb", "openvino", "nncf", "fastapi", "uvicorn",
           "python_multipart"}
class Hiding(m.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return None
        return m.PathFinder.find_spec(name, path, target)
sys.meta_path = [Hiding if f is m.PathFinder else f for f in sys.meta_path]
from frcnn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_train_eval_predict_need_no_extra(tmp_path):
    """What ``pip install frcnn`` installs is enough for train, eval and predict."""
    import subprocess

    from test_train import TINY_RUN

    frcnn.write_synth(tmp_path / "d", 6, 64, seed=0)
    out, data = tmp_path / "run", str(tmp_path / "d")

    def frcnn_cli(*args):
        done = subprocess.run(
            [sys.executable, "-c", BLOCKER, *args], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    frcnn_cli("train", "--data", data, "--epochs", "1", "--out", str(out), *TINY_RUN)
    weights = str(out / "weights" / "last.safetensors")
    assert "all" in frcnn_cli("eval", "--weights", weights, "--data", data)
    assert "detections" in frcnn_cli("predict", "--weights", weights, data)
