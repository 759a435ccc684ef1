import os
import subprocess
import sys

import pytest
import torch

import frcnn
from frcnn.demo import DEMO_MODEL

# The demo's small configuration keeps CPU tests fast; every stage is still exercised.
TINY = DEMO_MODEL


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return frcnn.build_model("resnet18_fpn", 3, **TINY)


@pytest.fixture(scope="session")
def onnx_export(tmp_path_factory):
    """A random tiny model file and its default ONNX export, which takes any image size,
    with the export's check cases (made once per test session: an export takes a minute on
    2 cores). Tests that write beside them copy them first."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from frcnn.deploy.export import export_model

    folder = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    model = frcnn.build_model("resnet18_fpn", 3, **TINY)
    weights = frcnn.save_model(model, folder / "m.safetensors", class_names=["cat", "dog"])
    out, cases = export_model(weights, "onnx")
    assert out == folder / "m.onnx"
    return weights, out, cases


@pytest.fixture
def frcnn_log():
    """Messages (INFO and up) of the ``frcnn`` logger during the test, whatever its
    propagation (a run's set-up stops it propagating to pytest's capture)."""
    import logging

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("frcnn")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)
    logger.setLevel(level)


def synth_batch(n: int, size: int, seed: int):
    """``n`` synthetic images (CHW, 0..1) of ``size`` px with 1-3 shapes each, and their
    targets."""
    import numpy as np

    from frcnn.data.synth import synth_image

    rng = np.random.default_rng(seed)
    images, targets = [], []
    for _ in range(n):
        image, boxes, labels = synth_image(rng, size, empty_prob=0.0, max_objects=3)
        images.append(torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255)
        targets.append({"boxes": torch.from_numpy(boxes), "labels": torch.from_numpy(labels)})
    return images, targets


def two_ranks(*args: str, launch: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 [LAUNCH] ARGS`` (a free port; one thread a
    rank, as torchrun sets it), its output captured; ARGS start with ``-m frcnn`` or a
    script."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    cmd += ["2", *launch, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
