"""Each backbone family learns: a few dozen steps on synthetic images lower the training loss
(slow: run with ``make test-slow``)."""

import numpy as np
import pytest
import torch
from conftest import synth_batch

import frcnn

FAMILIES = [
    "resnet18_fpn",
    "mobilenet_v3_large_320_fpn",
    "efficientnet_b3_fpn",
    "swin_t_fpn",
    "cspdarknet53_pan",
    "cspmirrornet_pan",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_training_lowers_the_loss(name):
    torch.manual_seed(0)
    levels = 3 if name.startswith("mobilenet") else 5
    model = frcnn.build_model(
        name,
        6,
        min_size=160,
        max_size=160,
        fpn_channels=64,
        representation_size=128,
        anchor_sizes=[[16, 32, 64, 128]] * 3 if levels == 3 else [[16], [32], [64], [128], [256]],
        aspect_ratios=[[0.5, 1.0, 2.0]] * levels,
        box_batch_size_per_image=64,
        rpn_post_nms_top_n_train=300,
    ).train()
    images, targets = synth_batch(4, 160, seed=1)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(40):
        total = sum(model(images, targets).values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(float(total))
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses
