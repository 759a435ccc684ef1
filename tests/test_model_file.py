import pytest
import torch
from safetensors import safe_open

import frcnn
from frcnn.demo import DEMO_MODEL
from frcnn.io.model_file import read_metadata


def test_save_load_round_trip(tmp_path, tiny_model):
    path = frcnn.save_model(tiny_model, tmp_path / "m.safetensors", class_names=["cat", "dog"])
    loaded = frcnn.load_model(path)
    assert loaded.class_names == ["cat", "dog"]
    assert not loaded.training
    config, names = read_metadata(path)
    assert config.name == "resnet18_fpn" and config.num_classes == 3 and names == ["cat", "dog"]
    assert config.min_size == DEMO_MODEL["min_size"] and config.norm == "gn"
    tiny_model.eval()
    image = [torch.rand(3, 100, 140)]
    with torch.no_grad():
        a, b = tiny_model(image)[0], loaded(image)[0]
    torch.testing.assert_close(a["boxes"], b["boxes"])
    torch.testing.assert_close(a["scores"], b["scores"])
    with safe_open(str(path), framework="pt") as f:  # plain safetensors, nothing pickled
        assert "roi_heads.predictor.cls_score.weight" in f.keys()  # noqa: SIM118


def test_class_name_count_checked(tmp_path, tiny_model):
    with pytest.raises(ValueError, match="3 class names for a model of 3 classes|give 2 names"):
        frcnn.save_model(tiny_model, tmp_path / "m.safetensors", class_names=["a", "b", "c", "d"])


def test_non_frcnn_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(ValueError, match="not an frcnn model file"):
        frcnn.load_model(path)


def test_unknown_option_suggests_the_right_one():
    with pytest.raises(TypeError, match="Did you mean 'box_score_thresh'"):
        frcnn.build_model("resnet18_fpn", 3, box_score_tresh=0.3)
    with pytest.raises(ValueError, match="Did you mean 'resnet50_fpn'"):
        frcnn.build_model("resnet50fpn", 3)


def test_resnet50_defaults_equal_torchvision():
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    ref = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=5)
    ours = frcnn.build_model("resnet50_fpn", 5)
    assert ours.transform.min_size == ref.transform.min_size
    assert ours.transform.max_size == ref.transform.max_size
    assert ours.transform.mean.flatten().tolist() == pytest.approx(ref.transform.image_mean)
    assert ours.transform.std.flatten().tolist() == pytest.approx(ref.transform.image_std)
    assert ours.rpn._pre_nms_top_n == (
        ref.rpn._pre_nms_top_n["training"],
        ref.rpn._pre_nms_top_n["testing"],
    )
    assert ours.rpn._post_nms_top_n == (
        ref.rpn._post_nms_top_n["training"],
        ref.rpn._post_nms_top_n["testing"],
    )
    assert ours.rpn.nms_thresh == ref.rpn.nms_thresh and ours.rpn.min_size == ref.rpn.min_size
    assert ours.rpn.batch_size_per_image == ref.rpn.fg_bg_sampler.batch_size_per_image
    assert ours.rpn.matcher.high == ref.rpn.proposal_matcher.high_threshold
    assert ours.rpn.matcher.low == ref.rpn.proposal_matcher.low_threshold
    heads, ref_heads = ours.roi_heads, ref.roi_heads
    assert heads.score_thresh == ref_heads.score_thresh
    assert heads.nms_thresh == ref_heads.nms_thresh
    assert heads.detections_per_img == ref_heads.detections_per_img
    assert heads.batch_size_per_image == ref_heads.fg_bg_sampler.batch_size_per_image
    assert heads.positive_fraction == ref_heads.fg_bg_sampler.positive_fraction
    assert heads.box_coder.weights == ref_heads.box_coder.weights
    assert ours.rpn.anchor_generator.sizes == [
        tuple(map(float, s)) for s in ref.rpn.anchor_generator.sizes
    ]
    ours_params = sum(p.numel() for p in ours.parameters())
    assert ours_params == sum(p.numel() for p in ref.parameters())
    # without pretrained weights torchvision trains every stage with plain BatchNorm
    assert isinstance(ours.backbone.body.bn1, torch.nn.BatchNorm2d)
    assert all(p.requires_grad for p in ours.parameters())


def test_missing_imagenet_download_fails_with_instructions(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="pretrained_backbone=PATH"):
        frcnn.build_model("resnet18_fpn", 3, pretrained_backbone="imagenet")


def test_local_backbone_weights_and_freezing(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import resnet18

    torch.manual_seed(0)
    net = resnet18()
    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    model = frcnn.build_model("resnet18_fpn", 3, pretrained_backbone=str(path))
    torch.testing.assert_close(
        model.backbone.body.layer1[0].conv1.weight, net.layer1[0].conv1.weight
    )
    # pretrained -> frozen BatchNorm, stem and layer1 frozen, layers 2-4 trainable
    body = model.backbone.body
    assert not body.conv1.weight.requires_grad and not body.layer1[0].conv1.weight.requires_grad
    assert body.layer2[0].conv1.weight.requires_grad and body.layer4[0].conv1.weight.requires_grad


def test_local_backbone_weights_report_missing_and_unexpected_keys(tmp_path, caplog):
    from safetensors.torch import save_file
    from torchvision.models import mobilenet_v3_large, resnet18

    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in resnet18().state_dict().items()}
    del state["layer4.1.conv2.weight"]
    state["extra.weight"] = torch.zeros(2)
    path = tmp_path / "r18.safetensors"
    save_file(state, str(path))
    with caplog.at_level("INFO", logger="frcnn"):
        frcnn.build_model("resnet18_fpn", 3, pretrained_backbone=str(path))
    report = " ".join(r.getMessage() for r in caplog.records)
    assert "1 missing (layer4.1.conv2.weight)" in report and "1 unexpected (extra.weight)" in report
    # an ImageNet MobileNetV3 checkpoint (features.* and classifier.*) loads into the body
    net = mobilenet_v3_large()
    mpath = tmp_path / "mnv3.pth"
    torch.save(net.state_dict(), mpath)
    model = frcnn.build_model("mobilenet_v3_large_fpn", 3, pretrained_backbone=str(mpath))
    torch.testing.assert_close(
        getattr(model.backbone.body, "16")[0].weight, net.features[16][0].weight
    )
    wrong = tmp_path / "wrong.safetensors"
    save_file({"a.weight": torch.zeros(3)}, str(wrong))
    with pytest.raises(ValueError, match="none of the 1 tensors fit"):
        frcnn.build_model("resnet18_fpn", 3, pretrained_backbone=str(wrong))


def test_a_file_whose_metadata_disagrees_with_its_weights_is_refused(tmp_path, tiny_model):
    import json

    from safetensors.torch import save_file

    path = frcnn.save_model(tiny_model, tmp_path / "m.safetensors", class_names=["cat", "dog"])
    with safe_open(str(path), framework="pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    edited = tmp_path / "edited.safetensors"
    save_file(state, str(edited), {**meta, "class_names": json.dumps(["cat", "dog", "emu"])})
    with pytest.raises(ValueError, match="names 3 classes but the model has 2"):
        frcnn.load_model(edited)
    config = json.loads(meta["config"])
    save_file(state, str(edited), {**meta, "config": json.dumps({**config, "num_classes": 5})})
    with pytest.raises(ValueError, match="names 2 classes but the model has 4"):
        frcnn.load_model(edited)
    del state["roi_heads.predictor.cls_score.weight"]
    save_file(state, str(edited), meta)
    with pytest.raises(ValueError, match="do not fit the stored configuration"):
        frcnn.load_model(edited)
