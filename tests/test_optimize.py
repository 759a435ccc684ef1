"""frcnn.deploy.optimize: batch norms folded into convolutions, detections unchanged."""

import pytest
import torch
from conftest import TINY
from torch import nn

import frcnn
from frcnn.deploy.optimize import NORMS, fold_batch_norms, optimize


def _with_statistics(model):
    """Give every batch norm non-trivial statistics and affine terms (so folding matters)."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, NORMS):
            n = m.weight.numel()
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


@pytest.mark.parametrize("norm", ["bn", "frozen_bn"])
def test_folded_model_detects_the_same(norm):
    torch.manual_seed(0)
    model = _with_statistics(frcnn.build_model("resnet18_fpn", 3, **{**TINY, "norm": norm}))
    norms = sum(isinstance(m, NORMS) for m in model.modules())
    fast = optimize(model)
    assert not any(isinstance(m, NORMS) for m in fast.modules())  # every one folded
    assert sum(isinstance(m, NORMS) for m in model.modules()) == norms  # original untouched
    images = [torch.rand(3, 120, 90), torch.rand(3, 100, 140)]
    with torch.no_grad():
        for a, b in zip(model(images), fast(images), strict=True):
            assert len(a["scores"]) == len(b["scores"]) > 0
            torch.testing.assert_close(b["boxes"], a["boxes"], atol=1e-2, rtol=0)
            torch.testing.assert_close(b["scores"], a["scores"], atol=1e-4, rtol=0)
            assert torch.equal(a["labels"], b["labels"])


def test_group_norms_and_training_batch_norms_are_left_alone():
    torch.manual_seed(0)
    gn = frcnn.build_model("resnet18_fpn", 3, **TINY)  # the demo's group norms
    assert fold_batch_norms(gn) == 0
    training = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    assert fold_batch_norms(training) == 0
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    x = torch.rand(1, 3, 8, 8)
    expected = conv(x)
    assert fold_batch_norms(conv) == 1 and isinstance(conv[1], nn.Identity)
    torch.testing.assert_close(conv(x), expected)


def test_predict_and_eval_run_the_folded_model(tmp_path):
    from frcnn.inference.compose import load_models
    from frcnn.inference.options import InferenceOptions

    torch.manual_seed(0)
    model = _with_statistics(frcnn.build_model("resnet18_fpn", 3, **{**TINY, "norm": "bn"}))
    weights = frcnn.save_model(model, tmp_path / "m.safetensors", class_names=["a", "b"])
    (loaded,) = load_models(weights, InferenceOptions(device="cpu"))
    assert not any(isinstance(m, NORMS) for m in loaded.modules())
    assert any(isinstance(m, NORMS) for m in frcnn.load_model(weights).modules())  # unfolded
