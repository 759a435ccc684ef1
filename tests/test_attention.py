"""CBAM and spatial attention: hand-computed outputs, and attention on every pyramid level
of any registered model changes what it sees."""

import math

import pytest
import torch

import frcnn
from frcnn.modeling.layers.attention import CBAM, ChannelAttention, SpatialAttention


def test_attention_blocks_by_hand():
    x = torch.arange(24, dtype=torch.float32).reshape(1, 2, 3, 4) / 10
    spatial = SpatialAttention()
    torch.nn.init.zeros_(spatial.conv.weight)
    torch.nn.init.constant_(spatial.conv.bias, math.log(3))  # sigmoid(log 3) = 0.75
    torch.testing.assert_close(spatial(x), 0.75 * x)
    channel = ChannelAttention(2, reduction=1)
    torch.nn.init.zeros_(channel.mlp[2].weight)  # mlp(.) = 0: sigmoid(0 + 0) = 0.5
    torch.testing.assert_close(channel(x), 0.5 * x)
    cbam = CBAM(2, reduction=1)
    cbam.channel, cbam.spatial = channel, spatial
    torch.testing.assert_close(cbam(x), 0.375 * x)
    # a non-trivial spatial weight: the 1x1 "conv" sees mean and max over channels
    one = SpatialAttention(kernel_size=1)
    with torch.no_grad():
        one.conv.weight.copy_(torch.tensor([1.0, -1.0]).reshape(1, 2, 1, 1))
        one.conv.bias.zero_()
    mean, peak = x.mean(1, keepdim=True), x.amax(1, keepdim=True)
    torch.testing.assert_close(one(x), x * torch.sigmoid(mean - peak))


@pytest.mark.parametrize("kind", ["cbam", "spatial"])
def test_attention_on_every_level_changes_what_the_heads_see(kind):
    small = dict(
        fpn_channels=32, representation_size=64, min_size=128, max_size=160, box_score_thresh=0.0
    )
    torch.manual_seed(0)
    plain = frcnn.build_model("mobilenet_v3_large_320_fpn", 3, **small).eval()
    torch.manual_seed(0)
    attended = frcnn.build_model("mobilenet_v3_large_320_fpn", 3, attention=kind, **small).eval()
    missing, unexpected = attended.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("backbone.attention.") for k in missing)
    assert len(attended.backbone.attention) == len(attended.backbone.levels) == 3
    x = torch.rand(1, 3, 128, 160)
    with torch.no_grad():
        before, after = plain.backbone(x), attended.backbone(x)
        for level, (p, a) in enumerate(zip(before, after, strict=True)):
            block = attended.backbone.attention[level]
            torch.testing.assert_close(a, block(p))  # attention applied on each level
            assert (a - p).abs().max() > 0.1 * p.abs().max()  # reweighted, not a no-op
        attended([x[0]])  # and the whole detector runs
    with pytest.raises(ValueError, match="unknown attention 'cbm'"):
        frcnn.build_model("resnet18_fpn", 3, attention="cbm")


def test_attention_models_round_trip(tmp_path):
    torch.manual_seed(0)
    model = frcnn.build_model(
        "resnet18_fpn",
        3,
        attention="cbam",
        fpn_channels=32,
        representation_size=64,
        min_size=96,
        max_size=96,
    ).eval()
    path = frcnn.save_model(model, tmp_path / "m.safetensors")
    loaded = frcnn.load_model(path).eval()
    images = [torch.rand(3, 90, 96)]
    with torch.no_grad():
        torch.testing.assert_close(loaded(images)[0]["scores"], model(images)[0]["scores"])
