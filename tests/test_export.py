"""ONNX export: the whole detector in one graph, equal to PyTorch at any size."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY

import frcnn

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(onnx_export):
    return onnx_export


def test_dynamic_export_matches_pytorch_at_two_sizes(exported):
    weights, out, cases = exported
    assert all(c.problem is None for c in cases)
    sizes = {c.size for c in cases if c.detections}
    assert len(sizes) >= 2  # one graph, two image sizes, detections compared
    graph = onnx.load(str(out))
    meta = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(meta["class_names"]) == ["cat", "dog"]
    assert json.loads(meta["config"])["name"] == "resnet18_fpn"
    assert [i.name for i in graph.graph.input] == ["image"]
    assert [o.name for o in graph.graph.output] == ["boxes", "scores", "labels"]


def test_exported_model_runs_without_frcnn_and_predict_takes_it(exported, tmp_path):
    import onnxruntime as ort

    weights, out, _ = exported
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    image = torch.rand(3, 150, 97, generator=torch.Generator().manual_seed(3))
    boxes, scores, labels = session.run(None, {"image": image.numpy()})
    reference = frcnn.load_model(weights)([image])[0]
    assert len(scores) == len(reference["scores"]) > 0
    np.testing.assert_allclose(np.sort(scores), np.sort(reference["scores"].numpy()), atol=1e-4)
    # frcnn predict with the .onnx file: the same detections as with the model file.
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8)).save(path)
    a = frcnn.predict(weights, [str(path)], conf=0.0)[0]
    b = frcnn.predict(out, [str(path)], conf=0.0)[0]
    assert len(a.scores) == len(b.scores) > 0
    np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-2)
    np.testing.assert_allclose(b.scores, a.scores, atol=1e-4)
    np.testing.assert_array_equal(b.labels, a.labels)
    with pytest.raises(ValueError, match="ensembles and --tta take frcnn model files"):
        frcnn.predict([out, out], [str(path)])


def test_a_model_that_detects_nothing_exports_and_runs(tmp_path):
    torch.manual_seed(0)
    model = frcnn.build_model("resnet18_fpn", 3, **{**TINY, "box_score_thresh": 1.0})
    weights = frcnn.save_model(model, tmp_path / "none.safetensors", class_names=["a", "b"])
    from frcnn.deploy.export import export_model
    from frcnn.deploy.exported import OnnxDetector

    out, cases = export_model(weights, "onnx", tmp_path / "none.onnx", dynamic=False)
    assert cases and all(c.detections == 0 and c.problem is None for c in cases)
    found = OnnxDetector(out)([torch.rand(3, 128, 128)])[0]
    assert found["boxes"].shape == (0, 4) and found["labels"].dtype == torch.int64
    shape = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in shape] == [3, 128, 128]  # a fixed size without --dynamic


@pytest.mark.slow  # over a minute on 2 cores (an ONNX export or two processes)
def test_placeholder_classes_stay_unreported_in_the_exported_graph(tmp_path):
    """A model with a placeholder class (as the COCO models have ten) exports with its
    filter: the graph's detections equal PyTorch's, none of the placeholder class, on an
    image of another size than the model's."""
    from frcnn.deploy.export import export_model
    from frcnn.deploy.exported import OnnxDetector

    torch.manual_seed(0)
    options = {**TINY, "placeholder_classes": [2], "box_score_thresh": 0.0}
    model = frcnn.build_model("resnet18_fpn", 5, **options).eval()
    weights = frcnn.save_model(model, tmp_path / "ph.safetensors", class_names=list("abcd"))
    out, cases = export_model(weights, "onnx")
    assert all(c.problem is None for c in cases)
    image = torch.rand(3, 90, 150, generator=torch.Generator().manual_seed(3))
    found = OnnxDetector(out)([image])[0]
    with torch.no_grad():
        expected = frcnn.load_model(weights)([image])[0]
    assert len(found["labels"]) >= 10 and not (found["labels"] == 2).any()
    assert torch.equal(found["labels"], expected["labels"])
    torch.testing.assert_close(found["boxes"], expected["boxes"], rtol=0, atol=1e-3)


def test_a_file_that_is_not_an_exported_model_is_refused(tmp_path):
    from frcnn.deploy.exported import OnnxDetector

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        OnnxDetector(junk)
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        frcnn.predict(junk, [str(junk)])


def test_benchmark_times_each_format_and_measures_its_memory(exported, capsys):
    from frcnn.cli import main
    from frcnn.deploy.benchmark import run_benchmark, table

    weights, out, _ = exported
    results = run_benchmark({"pytorch": weights, "onnx": out}, size=96, n=3, memory=True)
    assert [r.format for r in results] == ["pytorch", "onnx"]
    assert all(len(r.seconds) == 3 and r.median_ms > 0 and r.peak_mb > 50 for r in results)
    text = table(results)
    assert "pytorch" in text and "onnx" in text and "1.00x" in text
    args = ["benchmark", "--weights", str(weights), "--formats", "pytorch,onnx"]
    assert main([*args, "--img-size", "64", "--images", "2", "--no-memory"]) == 0
    printed = capsys.readouterr().out
    assert "ms/image" in printed and "onnx" in printed  # the export beside the weights is used
    assert main(["benchmark", "--weights", str(weights), "--formats", "tflite"]) == 2


def test_torchscript_export_at_the_model_size(exported, tmp_path):
    from frcnn.deploy.export import export_model
    from frcnn.deploy.exported import TorchScriptDetector

    weights, _, _ = exported
    out, cases = export_model(weights, "torchscript", tmp_path / "m.torchscript")
    assert cases and all(c.problem is None for c in cases)
    assert any(c.detections for c in cases)
    script = TorchScriptDetector(out)
    assert script.class_names == ["cat", "dog"]
    image = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(5))
    reference = frcnn.load_model(weights)([image])[0]
    found = script([image])[0]
    torch.testing.assert_close(found["scores"], reference["scores"], atol=1e-4, rtol=0)
    # another size is stretched to the traced 128x128 and its boxes mapped back
    other = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(6))
    stretched = torch.nn.functional.interpolate(
        other[None], size=(128, 128), mode="bilinear", align_corners=False
    )[0]
    expected = frcnn.load_model(weights)([stretched])[0]
    got = script([other])[0]
    assert len(got["scores"]) == len(expected["scores"]) > 0
    torch.testing.assert_close(got["scores"], expected["scores"], atol=1e-4, rtol=0)
    scale = torch.tensor([96 / 128, 64 / 128, 96 / 128, 64 / 128])
    torch.testing.assert_close(got["boxes"], expected["boxes"] * scale, atol=1e-2, rtol=0)
    with pytest.raises(ValueError, match="traced at one image size"):
        export_model(weights, "torchscript", tmp_path / "x.torchscript", dynamic=True)
    # a traced model that found nothing while tracing still runs where nothing is found
    torch.manual_seed(0)
    none = frcnn.build_model("resnet18_fpn", 3, **{**TINY, "box_score_thresh": 1.0})
    none_file = frcnn.save_model(none, tmp_path / "none.safetensors", class_names=["a", "b"])
    none_out, none_cases = export_model(none_file, "torchscript", tmp_path / "none.torchscript")
    assert all(c.detections == 0 and c.problem is None for c in none_cases)


@pytest.mark.slow  # over a minute on 2 cores (an ONNX export or two processes)
def test_an_export_records_its_weights_and_benchmark_remakes_a_stale_one(
    exported, tmp_path, frcnn_log
):
    from frcnn.deploy.benchmark import format_file
    from frcnn.deploy.export import default_out, weights_hash
    from frcnn.deploy.exported import OnnxDetector

    weights, out, _ = exported
    assert OnnxDetector(out).weights_sha256 == weights_hash(weights)
    assert format_file(weights, "onnx") == out and not frcnn_log  # reused as it is
    # new weights under the same name: the export beside them is stale
    stale = tmp_path / "m.safetensors"
    stale.write_bytes(weights.read_bytes())
    (tmp_path / "m.onnx").write_bytes(out.read_bytes())
    torch.manual_seed(1)
    model = frcnn.build_model("resnet18_fpn", 3, **TINY)
    frcnn.save_model(model, stale, class_names=["cat", "dog"])
    remade = format_file(stale, "onnx")
    assert remade == tmp_path / "m.onnx"
    assert OnnxDetector(remade).weights_sha256 == weights_hash(stale)
    assert any("made from other weights: exporting it again" in m for m in frcnn_log)
    # one name per variant
    assert default_out(weights, "onnx", dynamic=False).name == "m.fixed.onnx"
    assert default_out(weights, "onnx", "int8").name == "m.int8.onnx"
    assert default_out(weights, "onnx", "fp16", dynamic=False).name == "m.fixed.fp16.onnx"
    assert default_out(weights, "torchscript").name == "m.torchscript"


def test_a_reduced_precision_check_says_what_matched():
    from frcnn.cli.export import checked
    from frcnn.deploy.parity import ParityCase

    cases = [
        ParityCase("noise", (128, 128), 60, 0.5, 0.01, matched=6),
        ParityCase("blank 0.5", (128, 128), 3, 0.2, 0.01, matched=1),
    ]
    assert checked(cases, "int8") == (
        "compared with PyTorch (not required to match): 7 of its 63 detections matched "
        "within 1 px on 2 images"
    )
    assert checked(cases, "fp32") == "checked against PyTorch: the same detections on 2 images"
