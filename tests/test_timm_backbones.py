"""Backbones built through timm: any input size, NCHW out, ImageNet checkpoints with a key
report, norm choice, frozen stages, a clear offline error."""

import pytest
import torch

import frcnn

timm = pytest.importorskip("timm")


@pytest.mark.parametrize("name", ["swin_t_fpn", "efficientnet_b3_fpn"])
@pytest.mark.parametrize("size", [(96, 160), (224, 96), (160, 288)])
def test_any_padded_size_gives_nchw_levels(name, size):
    torch.manual_seed(0)
    body = frcnn.build_model(name, 2).backbone.body.eval()
    h, w = size
    with torch.no_grad():
        feats = body(torch.rand(1, 3, h, w))
    assert [tuple(f.shape[1:]) for f in feats] == [
        (lv.channels, -(-h // lv.stride), -(-w // lv.stride)) for lv in body.levels
    ]
    assert [lv.stride for lv in body.levels] == [4, 8, 16, 32]


def test_a_timm_classification_checkpoint_loads_with_a_report(tmp_path, frcnn_log):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    classifier = timm.create_model("swin_tiny_patch4_window7_224")
    save_file(classifier.state_dict(), tmp_path / "swin_t.safetensors")
    model = frcnn.build_model(
        "swin_t_fpn", 2, pretrained_backbone=str(tmp_path / "swin_t.safetensors")
    )
    own = model.backbone.body.model.state_dict()
    # timm's feature wrapper names layers.2 layers_2; the weights land all the same
    torch.testing.assert_close(
        own["layers_2.blocks.1.mlp.fc1.weight"],
        classifier.state_dict()["layers.2.blocks.1.mlp.fc1.weight"],
    )
    report = [m for m in frcnn_log if "swin_t backbone weights" in m]
    # every tensor but the classifier's head and final norm, nothing missing or unexpected
    assert report == [f"swin_t backbone weights: {len(classifier.state_dict()) - 4} tensors loaded"]
    # pretrained: frozen normalisation and 3 trainable stages (layers_1 .. layers_3)
    trainable = {
        n.split(".")[0] for n, p in model.backbone.body.model.named_parameters() if p.requires_grad
    }
    assert trainable == {"layers_1", "layers_2", "layers_3"}
    assert not any(
        p.requires_grad
        for m in model.backbone.body.modules()
        if isinstance(m, torch.nn.LayerNorm)
        for p in m.parameters()
    )


def test_norm_choice_and_frozen_stages_on_efficientnet():
    gn = frcnn.build_model("efficientnet_b3_fpn", 2, norm="gn").backbone.body
    groups = [m for m in gn.modules() if isinstance(m, timm.layers.GroupNormAct)]
    assert groups and not any(isinstance(m, timm.layers.BatchNormAct2d) for m in gn.modules())
    assert {(m.num_channels, m.num_groups) for m in groups} >= {(40, 8), (24, 8), (384, 32)}
    frozen = frcnn.build_model(
        "efficientnet_b3_fpn", 2, norm="frozen_bn", trainable_backbone_layers=1
    ).backbone.body
    assert not any(isinstance(m, timm.layers.BatchNormAct2d) for m in frozen.modules())
    trainable = {n.split(".")[1] for n, p in frozen.model.named_parameters() if p.requires_grad}
    assert trainable == {"5", "6"}  # blocks.5 and blocks.6, the stride-32 stage
    with pytest.raises(ValueError, match="trainable_backbone_layers must be in 0..5"):
        frcnn.build_model("efficientnet_b3_fpn", 2, trainable_backbone_layers=6)


def test_checkpointed_stages_give_the_same_gradients():
    torch.manual_seed(0)
    plain = frcnn.build_model("efficientnet_b3_fpn", 2).backbone.body.train()
    torch.manual_seed(0)
    ckpt = frcnn.build_model("efficientnet_b3_fpn", 2, gradient_checkpointing=True)
    ckpt = ckpt.backbone.body.train()
    x = torch.rand(2, 3, 64, 64)
    for body in (plain, ckpt):
        sum(f.mean() for f in body(x)).backward()
    grad = dict(ckpt.named_parameters())["model.blocks.3.0.conv_pw.weight"].grad
    torch.testing.assert_close(
        grad, dict(plain.named_parameters())["model.blocks.3.0.conv_pw.weight"].grad
    )


def test_imagenet_weights_offline_fail_with_what_to_do(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        RuntimeError,
        match=r"could not download the ImageNet weights for "
        r"efficientnet_b3 .*Hugging Face hub.*pretrained_backbone=PATH",
    ):
        frcnn.build_model("efficientnet_b3_fpn", 2, pretrained_backbone="imagenet")


def test_a_body_state_dict_file_loads_back(tmp_path, frcnn_log):
    """What frcnn pretrain-backbone writes: the body's own keys (``model.`` prefixed)."""
    from safetensors.torch import save_file

    torch.manual_seed(2)
    body = frcnn.build_model("efficientnet_b3_fpn", 2).backbone.body
    save_file({k: v.contiguous() for k, v in body.state_dict().items()}, tmp_path / "b.safetensors")
    frcnn_log.clear()
    again = frcnn.build_model(
        "efficientnet_b3_fpn", 2, pretrained_backbone=str(tmp_path / "b.safetensors")
    )
    report = [m for m in frcnn_log if "backbone weights:" in m]
    assert len(report) == 1 and "missing" not in report[0] and "unexpected" not in report[0]
    torch.testing.assert_close(
        again.backbone.body.model.conv_stem.weight, body.model.conv_stem.weight
    )
