import torch
from torchvision.models.detection import fasterrcnn_resnet50_fpn

import frcnn
from frcnn.cli import main
from frcnn.io.convert import from_torchvision


def test_from_torchvision_covers_every_parameter():
    torch.manual_seed(0)
    reference = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=4)
    converted = from_torchvision(reference.state_dict())
    ours = frcnn.build_model("resnet50_fpn", 4)
    assert set(converted) == set(ours.state_dict())
    ours.load_state_dict(converted)


def test_unknown_keys_are_listed():
    import pytest

    with pytest.raises(ValueError, match="roi_heads.mask_head"):
        from_torchvision({"roi_heads.mask_head.0.weight": torch.zeros(1)})


def test_convert_weights_cli(tmp_path, capsys):
    torch.manual_seed(0)
    reference = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=3).eval()
    src = tmp_path / "tv.pth"
    torch.save(reference.state_dict(), src)
    dst = tmp_path / "ours.safetensors"
    assert main(["convert-weights", str(src), str(dst), "--class-names", "cat,dog"]) == 0
    assert "resnet50_fpn" in capsys.readouterr().out
    model = frcnn.load_model(dst)
    assert model.class_names == ["cat", "dog"]
    model.channels_last = False  # same arithmetic as torchvision (see test_parity_torchvision)
    image = [torch.rand(3, 120, 160, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        a, b = reference(image)[0], model(image)[0]
    torch.testing.assert_close(b["boxes"], a["boxes"], rtol=0, atol=1e-3)
    torch.testing.assert_close(b["scores"], a["scores"], rtol=0, atol=1e-4)


def test_v2_state_dict_covers_every_parameter():
    from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2

    torch.manual_seed(0)
    reference = fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=4)
    converted = from_torchvision(reference.state_dict())
    ours = frcnn.build_model("resnet50_fpn_v2", 4)
    assert set(converted) == set(ours.state_dict())
    ours.load_state_dict(converted)
    assert "rpn.head.extra_convs.0.weight" in converted
    assert converted["roi_heads.box_head.fc.weight"].shape == (1024, 256 * 7 * 7)
