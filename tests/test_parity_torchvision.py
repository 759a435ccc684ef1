"""Same weights -> same proposals and detections as torchvision's reference Faster R-CNN.

Our models run the backbone in channels-last layout by default (faster on CPU); that changes
float rounding, which with random weights reorders near-tied candidates. These tests pin
``channels_last=False`` so both models do the same arithmetic; test_overfit checks that the
two layouts give the same detections on a trained model.
"""

import pytest
import torch
from torchvision.models.detection import fasterrcnn_resnet50_fpn

from frcnn.io.convert import model_from_torchvision


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    reference = fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=3, box_score_thresh=0.0
    ).eval()
    ours = model_from_torchvision(
        reference.state_dict(), box_score_thresh=0.0, channels_last=False
    ).eval()
    return reference, ours


def _run(model, images):
    captured = {}

    def keep_proposals(module, inputs, output):  # returns None: the output is left as it is
        captured["p"] = output[0]

    handle = model.rpn.register_forward_hook(keep_proposals)
    try:
        with torch.no_grad():
            detections = model(images)
    finally:
        handle.remove()
    return captured["p"], detections


def test_same_proposals_and_detections(models):
    reference, ours = models
    g = torch.Generator().manual_seed(1)
    # One non-square image (resize to 800 x 1120 and padding to 800 x 1120 -> 800 x 1120 is
    # exercised with the second image padded), one square; a batch of two, so padding matters.
    images = [torch.rand(3, 300, 420, generator=g), torch.rand(3, 352, 352, generator=g)]
    ref_props, ref_dets = _run(reference, images)
    our_props, our_dets = _run(ours, images)

    for i, (a, b) in enumerate(zip(ref_props, our_props, strict=True)):
        assert a.shape == b.shape, f"image {i}: {a.shape[0]} vs {b.shape[0]} proposals"
        torch.testing.assert_close(b, a, rtol=0, atol=1e-3)

    for i, (a, b) in enumerate(zip(ref_dets, our_dets, strict=True)):
        assert len(a["boxes"]) >= 50, f"image {i}: only {len(a['boxes'])} detections"
        assert len(b["boxes"]) == len(a["boxes"])
        torch.testing.assert_close(b["boxes"], a["boxes"], rtol=0, atol=1e-3)
        torch.testing.assert_close(b["scores"], a["scores"], rtol=0, atol=1e-4)
        assert torch.equal(b["labels"], a["labels"])
        # boxes are in original-image coordinates
        h, w = images[i].shape[-2:]
        assert b["boxes"][:, 2].max() <= w and b["boxes"][:, 3].max() <= h


def test_single_image_matches_too(models):
    reference, ours = models
    image = [torch.rand(3, 240, 180, generator=torch.Generator().manual_seed(2))]
    (ref_props,), (ref_det,) = _run(reference, image)
    (our_props,), (our_det,) = _run(ours, image)
    torch.testing.assert_close(our_props, ref_props, rtol=0, atol=1e-3)
    assert len(ref_det["boxes"]) >= 50
    torch.testing.assert_close(our_det["boxes"], ref_det["boxes"], rtol=0, atol=1e-3)
    torch.testing.assert_close(our_det["scores"], ref_det["scores"], rtol=0, atol=1e-4)
    assert torch.equal(our_det["labels"], ref_det["labels"])


def test_same_training_losses_when_every_anchor_and_roi_is_sampled():
    """With sample sizes larger than the candidate sets, sampling takes everything and the
    four losses are deterministic: they must agree with torchvision's."""
    everything = dict(rpn_batch_size_per_image=10**7, box_batch_size_per_image=10**7)
    torch.manual_seed(0)
    reference = fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=3, **everything
    )
    # torchvision trains plain BatchNorm when no pretrained weights are used; so do we.
    ours = model_from_torchvision(
        reference.state_dict(),
        norm="bn",
        trainable_backbone_layers=5,
        channels_last=False,
        **everything,
    )
    ours.train()
    g = torch.Generator().manual_seed(3)
    images = [torch.rand(3, 200, 260, generator=g), torch.rand(3, 180, 180, generator=g)]
    targets = [
        {"boxes": torch.tensor([[20.0, 30.0, 120.0, 150.0]]), "labels": torch.tensor([1])},
        {
            "boxes": torch.tensor([[5.0, 5.0, 60.0, 90.0], [100.0, 40.0, 170.0, 120.0]]),
            "labels": torch.tensor([2, 1]),
        },
    ]
    ref = reference(images, targets)
    mine = ours(images, targets)
    assert set(ref) == set(mine)
    for key in ref:
        torch.testing.assert_close(mine[key], ref[key], rtol=1e-4, atol=1e-6, msg=key)
    assert mine["loss_box_reg"].item() > 0 and mine["loss_rpn_box_reg"].item() > 0


@pytest.mark.parametrize(
    ("name", "reference_builder"),
    [
        ("mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_fpn"),
        ("mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn"),
    ],
)
def test_mobilenet_models_match_torchvision(name, reference_builder):
    """torchvision's MobileNetV3 detectors (two stride-32 levels, five anchor sizes a level,
    the 320 variant's sizes and proposal counts) built by name from frcnn's catalog."""
    import torchvision.models.detection as detection

    torch.manual_seed(0)
    reference = getattr(detection, reference_builder)(
        weights=None, weights_backbone=None, num_classes=3, box_score_thresh=0.0
    ).eval()
    ours = model_from_torchvision(
        reference.state_dict(), name, norm="bn", box_score_thresh=0.0, channels_last=False
    ).eval()
    assert ours.config["name"] == name
    with pytest.raises(ValueError, match="not a resnet50_fpn"):
        model_from_torchvision(reference.state_dict(), "resnet50_fpn")
    _same_on_two_images(reference, ours)


def _same_on_two_images(reference, ours):
    """The same proposals and at least 20 equal detections on a batch of two images."""
    g = torch.Generator().manual_seed(1)
    images = [torch.rand(3, 300, 420, generator=g), torch.rand(3, 352, 352, generator=g)]
    ref_props, ref_dets = _run(reference, images)
    our_props, our_dets = _run(ours, images)
    for a, b in zip(ref_props, our_props, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, rtol=0, atol=1e-3)
    for a, b in zip(ref_dets, our_dets, strict=True):
        assert len(a["boxes"]) >= 20 and len(b["boxes"]) == len(a["boxes"])
        torch.testing.assert_close(b["boxes"], a["boxes"], rtol=0, atol=1e-3)
        torch.testing.assert_close(b["scores"], a["scores"], rtol=0, atol=1e-4)
        assert torch.equal(b["labels"], a["labels"])


def _randomise_batch_norms(model, seed):
    """Untrained BatchNorms are identities; give them statistics so that they count."""
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def test_v2_model_matches_torchvision():
    """fasterrcnn_resnet50_fpn_v2 (BatchNorm FPN, two RPN convs, four-conv + one-FC box head)
    converted by its state dict: the same proposals and detections."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2

    small = dict(min_size=320, max_size=480, box_score_thresh=0.0)
    torch.manual_seed(0)
    reference = fasterrcnn_resnet50_fpn_v2(
        weights=None, weights_backbone=None, num_classes=3, **small
    ).eval()
    _randomise_batch_norms(reference, 0)
    ours = model_from_torchvision(reference.state_dict(), channels_last=False, **small).eval()
    assert ours.config["name"] == "resnet50_fpn_v2"
    assert ours.config["box_head"] == "4conv1fc" and ours.config["rpn_conv_depth"] == 2
    with pytest.raises(ValueError, match="not a resnet50_fpn"):
        model_from_torchvision(reference.state_dict(), "resnet50_fpn")
    _same_on_two_images(reference, ours)
