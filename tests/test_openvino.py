"""OpenVINO IR: the ONNX graph converted, the same detections as PyTorch at any size, its
metadata read back, taken by predict, eval and benchmark; int8 by NNCF."""

import json
import shutil
import sys

import numpy as np
import pytest
import torch

import frcnn
from frcnn.cli import main
from frcnn.data.synth import write_synth
from frcnn.deploy.parity import check_parity, parity_images

ov = pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def ir(onnx_export, tmp_path_factory):
    """The model file and its IR at the place ``frcnn export --format openvino`` writes it
    (beside the weights: ``m.xml`` + ``m.bin``), converted from the session's ONNX export
    as the export does, in a folder of this module's own."""
    from frcnn.deploy.openvino import onnx_to_ir

    weights, onnx_file, _ = onnx_export
    folder = tmp_path_factory.mktemp("openvino")
    shutil.copy(weights, folder / weights.name)
    return folder / weights.name, onnx_to_ir(onnx_file, folder / "m.xml")


def test_the_ir_detects_what_pytorch_detects_at_two_sizes_and_keeps_the_metadata(ir):
    from frcnn.deploy.exported import OpenVinoDetector

    weights, xml = ir
    assert xml.with_suffix(".bin").is_file()
    model = frcnn.load_model(weights)
    runner = OpenVinoDetector(xml)
    cases = check_parity(model, runner, parity_images((128, 128), dynamic=True))
    assert all(c.problem is None for c in cases), [c.line() for c in cases]
    assert len({c.size for c in cases if c.detections}) >= 2
    assert runner.class_names == ["cat", "dog"] and runner.precision == "fp32"
    assert runner.config["name"] == "resnet18_fpn" and runner.fixed_size is None
    from frcnn.deploy.export import weights_hash

    assert runner.weights_sha256 == weights_hash(weights)
    graph = ov.Core().read_model(str(xml))
    assert [i.get_any_name() for i in graph.inputs] == ["image"]
    assert [o.get_any_name() for o in graph.outputs] == ["boxes", "scores", "labels"]
    assert "framework" not in graph.get_rt_info()  # the metadata once, under frcnn
    assert json.loads(graph.get_rt_info(["frcnn", "class_names"]).astype(str)) == ["cat", "dog"]
    assert not list(xml.parent.glob(".*"))  # no temporary file left


def test_predict_and_eval_take_the_ir(ir, tmp_path):
    from PIL import Image

    weights, xml = ir
    path = tmp_path / "x.png"
    pixels = np.random.default_rng(0).integers(0, 255, (150, 97, 3), np.uint8)  # not 128x128
    Image.fromarray(pixels).save(path)
    a = frcnn.predict(weights, [str(path)], conf=0.0)[0]
    b = frcnn.predict(xml, [str(path)], conf=0.0)[0]
    assert len(a.scores) == len(b.scores) > 0
    np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-2)
    np.testing.assert_allclose(b.scores, a.scores, atol=1e-4)
    np.testing.assert_array_equal(b.labels, a.labels)
    write_synth(tmp_path / "data", 3, 96, seed=1)
    data = tmp_path / "data"
    x, y = (frcnn.evaluate(w, data, allow_mismatch=True) for w in (weights, xml))
    assert x.coco.keys() == y.coco.keys()
    assert all(abs(x.coco[k] - y.coco[k]) < 1e-6 for k in x.coco)


def test_benchmark_times_the_ir_beside_pytorch(ir, capsys):
    weights, _ = ir
    args = ["benchmark", "--weights", str(weights), "--formats", "pytorch,openvino"]
    assert main([*args, "--images", "2", "--no-memory"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(rows) == {"pytorch", "openvino"}  # the IR there, made from these weights, reused


def test_int8_ir_is_quantised_labelled_and_runs_at_any_size(ir, tmp_path):
    from frcnn.deploy.exported import OpenVinoDetector
    from frcnn.deploy.openvino import quantize_ir
    from frcnn.deploy.quantize import read_calibration_images

    weights, xml = ir
    write_synth(tmp_path / "cal", 4, 96, seed=2)
    images = read_calibration_images(tmp_path / "cal", 4, None)
    out = quantize_ir(xml, tmp_path / "m.int8.xml", images)
    graph = ov.Core().read_model(str(out))
    assert sum(op.get_type_name() == "FakeQuantize" for op in graph.get_ops()) > 20
    runner = OpenVinoDetector(out)
    assert runner.precision == "int8" and runner.class_names == ["cat", "dog"]
    assert runner.weights_sha256 == OpenVinoDetector(xml).weights_sha256
    for h, w in ((128, 128), (150, 97)):
        found = runner([torch.rand(3, h, w)])[0]
        assert found["boxes"].shape[1:] == (4,) and found["labels"].dtype == torch.int64
        assert len(found["scores"]) == len(found["boxes"])


def test_what_is_not_an_frcnn_ir_is_refused_by_name(ir, tmp_path):
    from frcnn.deploy.exported import OpenVinoDetector

    weights, xml = ir
    voc = tmp_path / "a.xml"
    voc.write_text("<annotation><filename>a.jpg</filename></annotation>")
    voc.with_suffix(".bin").write_bytes(b"")
    with pytest.raises(ValueError, match="not a readable OpenVINO model"):
        OpenVinoDetector(voc)
    alone = tmp_path / "alone.xml"
    shutil.copy(xml, alone)
    with pytest.raises(ValueError, match=r"needs its weights .*alone\.bin"):
        OpenVinoDetector(alone)
    from frcnn.deploy.export import export_model

    with pytest.raises(ValueError, match="--half is for ONNX"):
        export_model(weights, "openvino", precision="fp16")
    with pytest.raises(ValueError, match="--int8 needs --data"):
        export_model(weights, "openvino", precision="int8")


def test_missing_openvino_names_the_extra(ir, monkeypatch):
    from frcnn.deploy.exported import OpenVinoDetector
    from frcnn.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingDependencyError, match=r"frcnn\[openvino\]"):
        OpenVinoDetector(ir[1])


@pytest.mark.slow  # two ONNX exports: minutes on 2 cores
def test_cli_exports_the_ir_and_its_int8_version(tmp_path, capsys):
    torch.manual_seed(0)
    from conftest import TINY

    model = frcnn.build_model("resnet18_fpn", 3, **TINY)
    weights = frcnn.save_model(model, tmp_path / "m.safetensors", class_names=["cat", "dog"])
    assert main(["export", "--weights", str(weights), "--format", "openvino"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "the same detections on 5 images" in out
    assert (tmp_path / "m.xml").is_file() and (tmp_path / "m.bin").is_file()
    write_synth(tmp_path / "cal", 4, 96, seed=2)
    args = ["export", "--weights", str(weights), "--format", "openvino", "--int8"]
    assert main([*args, "--data", str(tmp_path / "cal"), "--fixed"]) == 0
    assert "openvino-int8" in capsys.readouterr().out
    assert (tmp_path / "m.fixed.int8.xml").is_file()
    assert not list(tmp_path.glob("*part*")) and not list(tmp_path.glob(".*"))


def test_the_ir_is_served_with_its_own_detections(ir, tmp_path):
    pytest.importorskip("fastapi")
    import urllib.request

    from frcnn.serve.background import BackgroundServer

    _, xml = ir
    path = tmp_path / "a.png"
    pixels = np.random.default_rng(4).integers(0, 255, (110, 140, 3), np.uint8)
    from PIL import Image

    Image.fromarray(pixels).save(path)
    expected = frcnn.predict(xml, [str(path)], conf=0.0)[0].to_json(["cat", "dog"])
    with BackgroundServer(xml) as server:
        with urllib.request.urlopen(f"{server.url}/model") as response:
            assert json.loads(response.read())["format"] == "openvino"
        request = urllib.request.Request(
            f"{server.url}/predict?conf=0", data=path.read_bytes(), method="POST"
        )
        request.add_header("Content-Type", "image/png")
        with urllib.request.urlopen(request) as response:
            assert json.loads(response.read()) == {**expected, "image": "upload"}
