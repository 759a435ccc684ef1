"""CSP backbones and the SPP + FPN + PAN neck: hand-checked pieces, the mirror stage's steps,
frozen stages, and what the bottom-up path adds over an FPN."""

import pytest
import torch
import torch.nn.functional as F

import frcnn
from frcnn.modeling.backbones.csp import CSPBody, MirrorCSPStage, channel_shuffle
from frcnn.modeling.layers.norm import norm_layer
from frcnn.modeling.necks.fpn import FeaturePyramidNetwork
from frcnn.modeling.necks.pan import SPP, PathAggregationNeck


def test_channel_shuffle_interleaves_two_groups():
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_mirror_stage_runs_its_documented_steps():
    torch.manual_seed(0)
    stage = MirrorCSPStage(8, 16, 2, norm_layer("bn"), shared_channels=4).eval()
    x, early = torch.rand(2, 8, 12, 10), torch.rand(2, 4, 24, 20)
    with torch.no_grad():
        down = stage.down(x)  # [2, 16, 6, 5]
        main = stage.main(down)
        # 1-2: the deep half beside its mirror, one pass of the shared blocks over both
        pair = stage.post(stage.blocks(torch.cat([main, main.flip(-1)], -1)))
        assert pair.shape == (2, 8, 6, 10)
        left, right = pair[..., :5], pair[..., 5:].flip(-1)
        # 3-4: max and mean of the pair, early features pooled to this size (2x2 means)
        early_here = F.avg_pool2d(early, 4)
        parts = torch.cat(
            [stage.shortcut(down), left.maximum(right), (left + right) / 2, early_here], 1
        )
        # 5: two interleaved groups into a grouped 1x1 transition
        expected = stage.transition(channel_shuffle(parts, 2))
        torch.testing.assert_close(stage(x, early), expected)
    transition = stage.transition[0]
    assert transition.groups == 2 and transition.in_channels == 3 * 8 + 4
    assert transition.weight.numel() == 16 * (28 // 2)  # half a dense 1x1's weights


def test_spp_pools_at_three_scales_and_keeps_the_size():
    spp = SPP(4)
    with torch.no_grad():
        spp.reduce.weight.zero_()
        spp.reduce.bias.zero_()
        spp.reduce.weight[0, 0] = 1.0  # hidden channel 0 = input channel 0 (ReLU'd)
        spp.fuse.weight.zero_()
        spp.fuse.bias.zero_()
        # output channel k = the k-th pooled copy of hidden channel 0 (k = 0: unpooled)
        for k in range(4):
            spp.fuse.weight[k, 2 * k] = 1.0
    x = torch.zeros(1, 4, 15, 15)
    x[0, 0, 7, 7] = 1.0  # one hot cell in the middle
    out = spp(x)[0]
    # a 5-cell max-pool spreads it over 5x5 cells, 9 over 9x9, 13 over 13x13
    assert [int(out[k].sum()) for k in range(4)] == [1, 25, 81, 169]


def test_pan_brings_fine_detail_to_the_coarsest_level():
    torch.manual_seed(0)
    feats = [torch.rand(1, c, s, s, requires_grad=True) for c, s in ((8, 16), (16, 8), (32, 4))]
    pan = PathAggregationNeck([8, 16, 32], 16, [8, 16, 32], extra_levels=1)
    fpn = FeaturePyramidNetwork([8, 16, 32], 16, in_strides=[8, 16, 32], extra_levels=1)
    assert [(lv.name, lv.stride, lv.pooled) for lv in pan.levels] == [
        ("p3", 8, True),
        ("p4", 16, True),
        ("p5", 32, True),
        ("p6", 64, False),
    ]
    for neck, reaches in ((pan, True), (fpn, False)):
        outs = neck(feats)
        assert [tuple(o.shape[1:]) for o in outs] == [
            (16, 16, 16),
            (16, 8, 8),
            (16, 4, 4),
            (16, 2, 2),
        ]
        (grad,) = torch.autograd.grad(outs[2].sum(), feats[0], allow_unused=True)
        assert (grad is not None and bool(grad.abs().sum() > 0)) is reaches


def test_csp_frozen_stages_and_odd_sizes():
    body = CSPBody((1, 1, 1, 1, 1), mirror=True, trainable_layers=2)
    trainable = {n.split(".")[1] for n, p in body.named_parameters() if p.requires_grad}
    assert trainable == {"3", "4"}  # stages 4 and 5 (0-based 3, 4); stem frozen
    with torch.no_grad():
        out = body(torch.rand(1, 3, 96, 160))
    assert [tuple(o.shape[1:]) for o in out] == [
        (128, 24, 40),
        (256, 12, 20),
        (512, 6, 10),
        (1024, 3, 5),
    ]
    with pytest.raises(ValueError, match="trainable_backbone_layers must be in 0..5"):
        frcnn.build_model("cspmirrornet_pan", 2, trainable_backbone_layers=6)


def test_csp_has_no_published_weights_and_says_what_to_do():
    with pytest.raises(ValueError, match="no published ImageNet weights.*pretrain-backbone"):
        frcnn.build_model("cspdarknet53_pan", 2, pretrained_backbone="imagenet")
