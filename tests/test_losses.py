import torch

from frcnn.modeling.proposals.rpn import RegionProposalNetwork


def test_image_without_boxes_gives_exactly_zero_box_losses(tiny_model):
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    losses = tiny_model([torch.rand(3, 96, 128)], [empty])
    assert losses["loss_rpn_box_reg"].item() == 0.0
    assert losses["loss_box_reg"].item() == 0.0
    assert losses["loss_objectness"].item() > 0 and losses["loss_classifier"].item() > 0
    sum(losses.values()).backward()  # background images still train the classifiers
    assert tiny_model.roi_heads.predictor.cls_score.weight.grad.abs().sum() > 0


def test_mixed_batch_trains_and_does_not_modify_targets(tiny_model):
    targets = [
        {"boxes": torch.tensor([[10.0, 10.0, 60.0, 50.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    losses = tiny_model([torch.rand(3, 64, 64), torch.rand(3, 100, 80)], targets)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_box_reg"] > 0
    assert targets[0]["boxes"].tolist() == [[10.0, 10.0, 60.0, 50.0]]


def test_rpn_samples_at_most_the_batch_with_half_positive(tiny_model):
    rpn: RegionProposalNetwork = tiny_model.rpn
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 10 + [[50.0, 50.0, 60.0, 60.0]] * 500)
    target = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]])}
    sampled, labels, pos, _ = rpn.assign_targets(anchors, [target])
    assert sampled.numel() == rpn.batch_size_per_image
    assert int(labels.sum()) == 10 == pos.numel()
