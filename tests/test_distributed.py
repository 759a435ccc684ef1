"""Two CPU processes with gloo under torchrun train a tiny model; rank 0's checkpoint scores."""

import json
import os
import subprocess
import sys

import pytest
import torch
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


def test_syncbn_is_batchnorm_converted_only_for_multi_gpu_runs(frcnn_log):
    from frcnn.engine.distributed import DistInfo, sync_batch_norms

    model = frcnn.build_model(
        "resnet18_fpn", 3, norm="syncbn", fpn_channels=16, representation_size=32
    )
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    single = sync_batch_norms(model, "syncbn", DistInfo(), torch.device("cpu"))
    assert single is model and not any(
        isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules()
    )
    two = DistInfo(rank=0, world_size=2)
    on_cpu = sync_batch_norms(model, "syncbn", two, torch.device("cpu"))
    assert on_cpu is model and any("needs GPUs" in m for m in frcnn_log)
    on_gpus = sync_batch_norms(model, "syncbn", two, torch.device("cuda", 0))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in on_gpus.modules())
    assert on_gpus.config["norm"] == "syncbn" and hasattr(on_gpus, "class_names") is hasattr(
        model, "class_names"
    )
    # timm's BatchNorm-with-activation layers keep their activation when synchronised
    timm = pytest.importorskip("timm")
    effnet = frcnn.build_model("efficientnet_b3_fpn", 3, norm="syncbn")
    synced = sync_batch_norms(effnet, "syncbn", two, torch.device("cuda", 0))
    layers = [m for m in synced.modules() if isinstance(m, torch.nn.SyncBatchNorm)]
    assert layers and all(isinstance(m, timm.layers.SyncBatchNormAct) for m in layers)
    assert isinstance(layers[0].act, torch.nn.SiLU)
