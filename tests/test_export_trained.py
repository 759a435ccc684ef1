"""Export parity on a trained model (slow: run with ``make test-slow``): a ResNet-18 FPN with
batch norms, trained briefly on synthetic shapes, exported to ONNX (any size) and
TorchScript; both detect what PyTorch detects on held-out synthetic images, and the
reduced-precision exports stay close."""

import pytest
import torch
from conftest import synth_batch

import frcnn
from frcnn.deploy.parity import check_parity

pytest.importorskip("onnxruntime")


def _at_least_a_pixel(detector):
    """``detector`` keeping detections at least 1 px wide and high. A briefly trained model
    also returns sub-pixel slivers clipped at the image border (e.g. 3.9 x 0.01 px at y=160),
    from degenerate proposals whose survival turns on float rounding: ONNX Runtime and
    PyTorch keep different ones of those; every real detection agrees."""

    def run(images):
        out = []
        for found in detector(images):
            wh = found["boxes"][:, 2:] - found["boxes"][:, :2]
            keep = (wh >= 1).all(1)
            out.append({k: v[keep] for k, v in found.items()})
        return out

    return run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.manual_seed(0)
    model = frcnn.build_model(
        "resnet18_fpn",
        6,
        norm="bn",
        min_size=160,
        max_size=160,
        fpn_channels=64,
        representation_size=128,
        anchor_sizes=[[16], [32], [64], [128], [256]],
        box_batch_size_per_image=64,
    ).train()
    images, targets = synth_batch(8, 160, seed=1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    for step in range(60):
        batch = slice(step % 2 * 4, step % 2 * 4 + 4)
        total = sum(model(images[batch], targets[batch]).values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    model.eval()
    folder = tmp_path_factory.mktemp("trained")
    names = [f"shape{k}" for k in range(1, 6)]  # synth_image's five classes
    return frcnn.save_model(model, folder / "trained.safetensors", class_names=names)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_trained_model_exports_with_parity(trained, fmt):
    from frcnn.deploy.export import export_model
    from frcnn.deploy.exported import OnnxDetector, TorchScriptDetector

    out, cases = export_model(trained, fmt, dynamic=fmt == "onnx")
    assert all(c.problem is None for c in cases), [c.line() for c in cases]
    runner = OnnxDetector(out) if fmt == "onnx" else TorchScriptDetector(out)
    # Textured a little: on flat synthetic backgrounds many anchors have exactly equal
    # objectness, and which of the tied ones a top-k keeps differs between the runtimes.
    held_out, _ = synth_batch(6, 160, seed=9)
    g = torch.Generator().manual_seed(0)
    held_out = [image * 0.97 + 0.03 * torch.rand(image.shape, generator=g) for image in held_out]
    named = [(f"shapes {i}", image) for i, image in enumerate(held_out)]
    if fmt == "onnx":  # one graph, any size: a larger copy too
        big = torch.nn.functional.interpolate(held_out[0][None], size=(240, 200))[0]
        named.append(("shapes larger", big))
    model = frcnn.load_model(trained).eval()
    shapes = check_parity(_at_least_a_pixel(model), _at_least_a_pixel(runner), named)
    # The RPN ranks proposals by objectness probability, as torchvision does (so that frcnn
    # equals torchvision); a trained model's probabilities tie in float32 near 1, and ONNX
    # Runtime's sigmoid breaks some ties the other way, so on a crowded image a few
    # proposals, and the detections they lead to, can differ. Every other image is exact.
    exact = [c for c in shapes if c.problem is None]
    assert len(exact) >= len(shapes) - 1, [c.line() for c in shapes]
    assert sum(c.detections for c in exact) >= 6  # the trained model finds the shapes


@pytest.mark.slow
def test_reduced_precision_exports_of_a_trained_model_stay_close(trained, tmp_path):
    from frcnn.data.synth import write_synth
    from frcnn.deploy.export import export_model

    write_synth(tmp_path / "cal", 16, size=160, seed=4)
    for precision, bound in (("fp16", 0.01), ("int8", None)):
        _, cases = export_model(
            trained, "onnx", dynamic=True, precision=precision, data=tmp_path / "cal"
        )
        assert all(c.problem is None for c in cases)  # ran on every image, differences reported
        if bound:  # float16 stays close; int8's cost is the benchmark's to measure
            same_count = [c for c in cases if not c.note]
            assert all(c.score_error < bound for c in same_count), [c.line() for c in cases]
