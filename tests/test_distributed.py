"""Two CPU processes with gloo under torchrun train a tiny model; rank 0's checkpoint scores."""

import json
import os
import subprocess
import sys

from test_train import TINY_RUN

import frcnn
from frcnn.data.synth import write_synth


def test_two_process_gloo_training(tmp_path):
    write_synth(tmp_path / "train", 8, 96, seed=0)
    write_synth(tmp_path / "val", 4, 96, seed=1)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "frcnn",
        "train",
        "--data",
        str(tmp_path / "train"),
        "--val",
        str(tmp_path / "val"),
        "--epochs",
        "1",
        "--out",
        str(out),
        *TINY_RUN,
        "data.batch_size=2",
        "schedule.time_budget=5",  # exercises the per-step budget broadcast across ranks
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    model = frcnn.load_model(out / "weights" / "last.safetensors")
    assert model.class_names[0] == "rectangle"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["AP50"] <= 1
    assert not (tmp_path / "run2").exists()  # only rank 0 created and wrote the run folder
    result = frcnn.evaluate(out / "weights" / "last.safetensors", tmp_path / "val")
    assert 0 <= result.coco["AP50"] <= 1
