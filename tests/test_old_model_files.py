"""Model files written by earlier frcnn releases still load and give the same detections."""

import gzip
import json
import shutil
from pathlib import Path

import pytest
import torch

import frcnn
from frcnn.demo import two_object_image

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def v0_1_0_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("old") / "model_v0_1_0.safetensors"
    with gzip.open(DATA / "model_v0_1_0.safetensors.gz", "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def test_v0_1_0_model_file_loads_and_detects_the_same(v0_1_0_file):
    model = frcnn.load_model(v0_1_0_file)
    assert model.class_names == ["rectangle", "disc"]
    expected = json.loads((DATA / "model_v0_1_0.expected.json").read_text())["detections"]
    image, _ = two_object_image()
    noise = torch.rand(3, 150, 200, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model([image, noise])
    for det, exp in zip(got, expected, strict=True):
        assert len(det["boxes"]) == len(exp["boxes"]) > 0
        torch.testing.assert_close(det["boxes"], torch.tensor(exp["boxes"]), atol=1e-3, rtol=0)
        torch.testing.assert_close(det["scores"], torch.tensor(exp["scores"]), atol=1e-5, rtol=0)
        assert det["labels"].tolist() == exp["labels"]
