"""Reduced precision (bf16 PyTorch, fp16 and int8 ONNX exports) and fixed-size exports in the
benchmark: labelled, running, close to float32; accuracy measured by the benchmark only."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY

import frcnn
from frcnn.deploy.parity import check_parity, compare
from frcnn.deploy.precision import Bf16, with_precision
from frcnn.modeling.roi.pooler import MultiScaleRoIAlign

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision")
    torch.manual_seed(0)
    model = frcnn.build_model("resnet18_fpn", 3, **TINY)
    return frcnn.save_model(model, folder / "m.safetensors", class_names=["cat", "dog"])


def test_bf16_keeps_box_arithmetic_in_float32(weights):
    model = frcnn.load_model(weights).eval()
    image = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(2))
    reference = model([image])[0]
    fast = with_precision(frcnn.load_model(weights).eval(), "bf16")
    assert fast.precision == "bf16" and isinstance(fast.backbone, Bf16)
    assert isinstance(fast.roi_heads.box_head, Bf16)
    found = fast([image])[0]
    assert found["boxes"].dtype == torch.float32 and found["scores"].dtype == torch.float32
    case = compare("bf16", image, reference, found, strict=False)
    assert case.detections > 0 and case.problem is None
    assert case.score_error < 0.05  # bfloat16 keeps ~3 digits; measured, not exact


def test_predict_takes_a_precision_and_exports_refuse_one(weights, tmp_path):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8)).save(path)
    found = frcnn.predict(weights, [str(path)], conf=0.0, precision="bf16")[0]
    assert len(found.scores) > 0 and found.boxes.dtype == np.float32
    with pytest.raises(ValueError, match="unknown precision"):
        frcnn.predict(weights, [str(path)], precision="fp8")
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"x")
    with pytest.raises(ValueError, match="precision it was exported with"):
        frcnn.predict(onnx_file, [str(path)], precision="bf16")


@pytest.mark.slow  # over a minute on 2 cores (an ONNX export or two processes)
def test_half_export_is_labelled_and_close_to_float32(weights, tmp_path):
    from frcnn.deploy.export import export_model
    from frcnn.deploy.exported import OnnxDetector

    out, cases = export_model(weights, "onnx", dynamic=True, precision="fp16")
    assert out.name == "m.fp16.onnx"  # beside the weights, named by its precision
    assert all(c.problem is None for c in cases) and len({c.size for c in cases}) == 2
    assert max(c.score_error for c in cases) < 0.01
    graph = onnx.load(str(out))
    halves = [t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(halves) > 10  # the heavy layers' weights
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["precision"] == "fp16" and json.loads(meta["dynamic"]) is True
    detector = OnnxDetector(out)
    assert detector.precision == "fp16"
    found = detector([torch.rand(3, 100, 140)])[0]
    assert found["boxes"].dtype == torch.float32  # outputs stay float32
    with pytest.raises(ValueError, match="ONNX exports"):
        export_model(weights, "torchscript", tmp_path / "x.torchscript", precision="fp16")


@pytest.mark.slow  # over a minute on 2 cores (an ONNX export or two processes)
def test_int8_export_needs_images_and_quantises_the_heavy_layers(weights, tmp_path):
    from frcnn.data.synth import write_synth
    from frcnn.deploy.export import export_model
    from frcnn.deploy.exported import OnnxDetector

    with pytest.raises(ValueError, match="--int8 needs --data"):
        export_model(weights, "onnx", tmp_path / "q.onnx", precision="int8")
    write_synth(tmp_path / "cal", 6, size=128, seed=3)
    out, cases = export_model(
        weights, "onnx", tmp_path / "q.onnx", dynamic=False, precision="int8", data=tmp_path / "cal"
    )
    assert not (tmp_path / "q.fp32-part.onnx").exists()  # the float32 step is cleaned up
    assert all(c.problem is None for c in cases)  # reported, not required to vanish
    graph = onnx.load(str(out))
    ops = {n.op_type for n in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "NonMaxSuppression"} <= ops
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["precision"] == "int8" and json.loads(meta["class_names"]) == ["cat", "dog"]
    found = OnnxDetector(out)([torch.rand(3, 128, 128)])[0]
    assert found["scores"].dtype == torch.float32
    # a fixed-size export stretches another size to its own and maps the boxes back
    other = OnnxDetector(out)([torch.rand(3, 100, 64)])[0]
    assert other["boxes"].shape[1] == 4 and bool((other["boxes"][:, 2] <= 64 + 1e-3).all())


def test_benchmark_times_a_fixed_size_export_at_its_size(weights, capsys):
    from frcnn.cli import main

    args = ["benchmark", "--weights", str(weights), "--formats", "pytorch,pytorch-bf16"]
    assert main([*args, "--img-size", "64", "--images", "2", "--no-memory"]) == 0
    formats = "pytorch,torchscript"
    code = main(
        ["benchmark", "--weights", str(weights), "--formats", formats, "--images", "2"]
        + ["--img-size", "64", "--no-memory"]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "(128x128 px)" in printed  # the traced size, for every format
    assert "pytorch-bf16" in printed and "torchscript" in printed
    code = main(["benchmark", "--weights", str(weights), "--formats", "onnx-int8"])
    assert code == 2  # no int8 export and no --data to calibrate one on


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_a_traced_pooler_follows_the_rois_of_each_image():
    """The per-level assignment is data: a trace made with one split of RoIs over the levels
    must pool another split right (an indexed assignment baked the traced counts in)."""
    pooler = MultiScaleRoIAlign(strides=(4, 8, 16, 32), output_size=3, sampling_ratio=2)
    features = [torch.rand(1, 2, 64 // s, 64 // s) for s in (1, 2, 4, 8)]

    def boxes(sides):
        return [torch.tensor([[2.0, 2.0, 2.0 + s, 2.0 + s] for s in sides])]

    # one RoI per level while tracing (sides 8, 120, 224, 500 map to levels 2, 3, 4, 5);
    # then none at levels 3 and 4, two at 2
    traced = torch.jit.trace(pooler, (features, boxes([8, 120, 224, 500])), check_trace=False)
    other = boxes([8, 9, 500])
    torch.testing.assert_close(traced(features, other), pooler(features, other))


def test_a_export_that_fails_to_run_is_a_reported_problem():
    def broken(images):
        raise RuntimeError("shape '[64, 7, 7]' is invalid for input of size 0")

    def fine(images):
        return [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)}]

    cases = check_parity(fine, broken, [("noise", torch.rand(3, 8, 8))])
    assert cases[0].problem.startswith("failed to run: shape")
