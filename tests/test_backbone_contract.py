"""The backbone contract: a backbone declared as data plugs into build_model, the pyramid,
anchors and RoI pooling; registries find things by name; model files migrate."""

import pytest
import torch
from torch import nn

import frcnn
from frcnn.io.model_file import FORMAT_VERSION, migrate_config
from frcnn.modeling.backbones import BACKBONES, BackboneSpec, FeatureLevel, check_levels
from frcnn.modeling.registry import MODELS, Registry


class TinyBody(nn.Module):
    """Three levels at strides 8, 16, 32 with 8, 16, 24 channels; no extra level."""

    extra_levels = 0

    def __init__(self, norm, trainable_layers, weights, checkpointing):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=8, padding=1)
        self.down1 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(16, 24, 3, stride=2, padding=1)
        self.levels = (
            FeatureLevel("c3", 8, 8),
            FeatureLevel("c4", 16, 16),
            FeatureLevel("c5", 24, 32),
        )

    def forward(self, x):
        c3 = self.stem(x)
        c4 = self.down1(c3)
        return [c3, c4, self.down2(c4)]


@pytest.fixture
def tiny_backbone():
    BACKBONES.register("tiny_test", BackboneSpec(TinyBody, max_trainable_layers=3))
    MODELS.register("tiny_test_fpn", {"backbone": "tiny_test", "neck": "fpn"})
    yield "tiny_test_fpn"
    BACKBONES.unregister("tiny_test")
    MODELS.unregister("tiny_test_fpn")


TINY_HEADS = dict(
    min_size=64,
    max_size=64,
    fpn_channels=16,
    representation_size=32,
    anchor_sizes=((16,), (32,), (64,)),
    aspect_ratios=((1.0,),) * 3,
    rpn_pre_nms_top_n_test=50,
    rpn_post_nms_top_n_test=20,
)


def test_a_registered_backbone_is_built_by_name(tiny_backbone, tmp_path):
    torch.manual_seed(0)
    model = frcnn.build_model(tiny_backbone, 3, **TINY_HEADS)
    levels = model.backbone.levels
    assert [(lv.name, lv.channels, lv.stride, lv.pooled) for lv in levels] == [
        ("p3", 16, 8, True),
        ("p4", 16, 16, True),
        ("p5", 16, 32, True),
    ]
    # Pooled levels and the box head come from the declaration, not from strides[:-1].
    assert model.roi_heads.pooler.strides == (8, 16, 32)
    assert model.roi_heads.pooler.levels == (0, 1, 2)
    assert model.roi_heads.box_head.fc1.in_features == 16 * 7 * 7
    image, target = (
        torch.rand(3, 64, 64),
        {
            "boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]),
            "labels": torch.tensor([1]),
        },
    )
    losses = model([image], [target])
    sum(losses.values()).backward()
    assert model.backbone.body.stem.weight.grad is not None
    model.eval()
    path = frcnn.save_model(model, tmp_path / "tiny.safetensors")
    loaded = frcnn.load_model(path)
    with torch.no_grad():
        a, b = model([image])[0], loaded([image])[0]
    torch.testing.assert_close(a["scores"], b["scores"])


def test_extra_levels_are_anchored_but_not_pooled(tiny_backbone):
    model = frcnn.build_model(
        tiny_backbone,
        3,
        **{
            **TINY_HEADS,
            "extra_levels": 1,
            "anchor_sizes": ((16,), (32,), (64,), (128,)),
            "aspect_ratios": ((1.0,),) * 4,
        },
    )
    assert model.backbone.strides == (8, 16, 32, 64)
    assert [lv.pooled for lv in model.backbone.levels] == [True, True, True, False]
    assert model.roi_heads.pooler.strides == (8, 16, 32)
    model.eval()
    with torch.no_grad():
        features = model.backbone(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape[-2:]) for f in features] == [(8, 8), (4, 4), (2, 2), (1, 1)]


def test_anchor_levels_must_match_declared_levels(tiny_backbone):
    with pytest.raises(ValueError, match="anchor_sizes has 5 levels but the tiny_test fpn has 3"):
        frcnn.build_model(tiny_backbone, 3, min_size=64, max_size=64)


def test_resnet_declares_its_levels():
    model = frcnn.build_model("resnet18_fpn", 3, fpn_channels=32)
    body = model.backbone.body
    assert [(lv.name, lv.channels, lv.stride) for lv in body.levels] == [
        ("c2", 64, 4),
        ("c3", 128, 8),
        ("c4", 256, 16),
        ("c5", 512, 32),
    ]
    assert model.backbone.strides == (4, 8, 16, 32, 64)
    assert model.roi_heads.pooler.strides == (4, 8, 16, 32)


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ([], "declares no feature levels"),
        ([FeatureLevel("a", 8, 6)], "powers of two"),
        ([FeatureLevel("a", 8, 16), FeatureLevel("b", 8, 8)], "must not decrease"),
        ([FeatureLevel("a", 0, 8)], "channels >= 1"),
    ],
)
def test_contract_violations_are_named(levels, message):
    with pytest.raises(ValueError, match=message):
        check_levels(levels, "mine")


def test_registry_suggests_names():
    reg: Registry[int] = Registry("thing")
    reg.register("alpha", 1)
    with pytest.raises(ValueError, match="unknown thing 'alpa'.*Did you mean 'alpha'"):
        reg.get("alpa")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", 2)
    with pytest.raises(ValueError, match="unknown backbone 'resnet5'"):
        frcnn.build_model("resnet50_fpn", 3, backbone="resnet5")


def test_version_1_configuration_migrates():
    v1 = {"name": "resnet18_fpn", "num_classes": 3, "backbone": "resnet18"}
    assert migrate_config(v1, "1", "m") == {**v1, "neck": "fpn", "extra_levels": 1}
    assert migrate_config(dict(v1, neck="fpn"), FORMAT_VERSION, "m")["neck"] == "fpn"
    with pytest.raises(ValueError, match="format version '99'.*upgrade frcnn"):
        migrate_config(v1, "99", "m")
    with pytest.raises(ValueError, match=r"unknown model configuration keys \['future_key'\]"):
        migrate_config(dict(v1, future_key=1), FORMAT_VERSION, "m")


@pytest.mark.parametrize("name", sorted(n for n in MODELS if not n.startswith("tiny_test")))
def test_every_registered_model_trains_predicts_and_round_trips(name, tmp_path):
    """Small inputs and a narrow FPN keep this fast; the architecture is the registered one."""
    import frcnn

    torch.manual_seed(0)
    model = frcnn.build_model(
        name,
        3,
        fpn_channels=32,
        representation_size=64,
        min_size=128,
        max_size=160,
        box_score_thresh=0.0,
        class_weights=(1.0, 2.0, 0.5),
    )
    # class-weighted classification loss by hand: logits [2, 0, 0] on every RoI give
    # a = log((e^2 + 2) / e^2) = 0.2395447 for background, b = 2 + a otherwise;
    # labels 0, 1, 2 (and one ignored) weigh 1, 2, 0.5: (a + 2b + 0.5b) / 3.5 = 1.6681161
    logits = torch.tensor([[2.0, 0.0, 0.0]]).repeat(4, 1)
    losses = model.roi_heads.losses(
        logits, torch.zeros(4, 12), torch.tensor([0, 1, 2, -1]), torch.zeros(4, 4)
    )
    assert losses["loss_classifier"].item() == pytest.approx(1.6681161, abs=1e-6)
    body = model.backbone.body
    with torch.no_grad():
        feats = body(torch.rand(1, 3, 128, 160))
    assert [f.shape[1] for f in feats] == [lv.channels for lv in body.levels]
    assert [128 // f.shape[2] for f in feats] == [lv.stride for lv in body.levels]
    model.train()
    images = [torch.rand(3, 120, 150), torch.rand(3, 96, 128)]
    targets = [
        {"boxes": torch.tensor([[10.0, 20.0, 80.0, 90.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.tensor([[5.0, 5.0, 60.0, 40.0]]), "labels": torch.tensor([2])},
    ]
    losses = model(images, targets)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        before = model(images)
    path = frcnn.save_model(model, tmp_path / f"{name}.safetensors")
    loaded = frcnn.load_model(path).eval()
    with torch.no_grad():
        after = loaded(images)
    for a, b in zip(before, after, strict=True):
        assert set(a) == {"boxes", "scores", "labels"}
        torch.testing.assert_close(b["boxes"], a["boxes"])
        torch.testing.assert_close(b["scores"], a["scores"])
