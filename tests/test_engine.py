import math

import numpy as np
import pytest
import torch

import frcnn
from frcnn.data.records import DetectionDataset, ImageRecord
from frcnn.demo import DEMO_MODEL, two_object_image
from frcnn.engine.hooks import size_for_epoch
from frcnn.engine.loop import l1_penalty
from frcnn.engine.model import auto_class_weights
from frcnn.engine.optim import LRSchedule, param_groups


def test_lr_schedule_hand_computed():
    # 10 epochs of 10 steps; warm-up over the first 5 steps from 0.001
    s = LRSchedule(
        total_steps=100,
        epochs=10,
        policy="multistep",
        warmup_steps=5,
        warmup_factor=0.001,
        milestones=[6, 8],
        gamma=0.1,
    )
    assert s(0) == pytest.approx(0.001)
    assert s(2) == pytest.approx(0.001 * 0.6 + 0.4)
    assert s(5) == 1.0 and s(59) == 1.0
    assert s(60) == pytest.approx(0.1) and s(85) == pytest.approx(0.01)
    step = LRSchedule(100, 10, "step", step_size=3, gamma=0.5)
    assert [step(i) for i in (0, 29, 30, 60, 99)] == pytest.approx([1, 1, 0.5, 0.25, 0.125])
    cos = LRSchedule(100, 10, "cosine")
    assert (
        cos(0) == 1 and cos(50) == pytest.approx(0.5) and cos(100) == pytest.approx(0.0, abs=1e-12)
    )
    # a time budget that only allows 50 steps compresses the schedule onto them
    cos.fit_total(50)
    assert cos(25) == pytest.approx(0.5) and cos(50) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        LRSchedule(10, 1, "linear")


def test_param_groups_skip_decay_on_norms_and_biases():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2)
    )
    decay, no_decay = param_groups(model, 1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [(4, 3, 3, 3), (2, 4)]
    assert len(no_decay["params"]) == 4  # conv bias, BN weight and bias, linear bias


def test_l1_penalty_counts_weights_only():
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        model.bias.fill_(10.0)
    assert float(l1_penalty(model).detach()) == pytest.approx(3.5)


def test_auto_class_weights_inverse_frequency():
    recs = [
        ImageRecord("a", None, 10, 10, [[0, 0, 1, 1]] * 3, [1, 1, 2]),
        ImageRecord("b", None, 10, 10, [[0, 0, 1, 1]], [1]),
    ]
    ds = DetectionDataset(".", ["x", "y", "z"], recs)
    # counts x 3, y 1, z 0 -> inverse 1/3, 1, 0 -> normalised by the mean over present (2/3)
    assert auto_class_weights(ds) == pytest.approx([1.0, 0.5, 1.5, 0.0])


def test_progressive_sizes():
    schedule = [[0, 160], [3, 256]]
    assert [size_for_epoch(schedule, e) for e in (0, 2, 3, 9)] == [160, 160, 256, 256]
    assert size_for_epoch(None, 4) is None


def test_gradient_checkpointing_gives_the_same_gradients():
    image, target = two_object_image()
    grads = []
    for flag in (False, True):
        torch.manual_seed(0)
        model = frcnn.build_model(
            "resnet18_fpn", 3, **{**DEMO_MODEL, "gradient_checkpointing": flag}
        )
        torch.manual_seed(1)
        loss = sum(model([image], [target]).values())
        loss.backward()
        grads.append(model.backbone.body.layer3[0].conv1.weight.grad.clone())
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)


def test_bf16_autocast_step_is_finite():
    image, target = two_object_image()
    torch.manual_seed(0)
    model = frcnn.build_model("resnet18_fpn", 3, **DEMO_MODEL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model([image], [target])
    assert all(math.isfinite(float(v.detach())) for v in losses.values())
    sum(losses.values()).backward()
    assert np.isfinite(model.roi_heads.predictor.cls_score.weight.grad.float().numpy()).all()


def test_a_shortened_run_keeps_its_warm_up_unless_it_would_dominate():
    s = LRSchedule(1000, 10, "constant", warmup_steps=100, warmup_factor=0.001)
    s.fit_total(500)  # a budget allows 500 steps: the 100-step warm-up stays
    assert s(50) == pytest.approx(0.5005) and s(100) == 1.0
    s.fit_total(100)  # only 100 steps: the warm-up is cut to 30 of them
    assert s(15) == pytest.approx(0.5005) and s(30) == 1.0


def test_default_schedule_scales_to_short_runs():
    # 3 epochs of 10 steps, 1-epoch warm-up: the 1x recipe's milestones (2/3, 11/12 of the
    # run) land on steps 20 and 27.5; the warm-up is cut to 30% of the 30 steps = 9 steps
    s = LRSchedule(total_steps=30, epochs=3, warmup_steps=10, warmup_factor=0.001)
    assert s.warmup_shortened() and s.warmup_length() == pytest.approx(9)
    assert s(3) == pytest.approx(0.001 * (2 / 3) + 1 / 3)
    assert [s(i) for i in (9, 19, 20, 27, 28, 30)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    # a time budget that fits 12 steps: milestones at 8 and 11, warm-up 3.6 steps
    s.fit_total(12)
    assert [s(i) for i in (7, 8, 10, 11)] == pytest.approx([1, 0.1, 0.1, 0.01])
    assert s(2) == pytest.approx(0.001 * (1 - 2 / 3.6) + 2 / 3.6)
    # milestones as fractions of the run; step size as a fraction
    f = LRSchedule(total_steps=40, epochs=4, milestones=[0.5])
    assert [f(19), f(20)] == pytest.approx([1, 0.1])
    st = LRSchedule(total_steps=40, epochs=4, policy="step", step_size=0.25, gamma=0.5)
    assert [st(9), st(10), st(39)] == pytest.approx([1, 0.5, 0.125])


def test_schedule_warnings_name_what_does_not_fit():
    from frcnn.engine.optim import schedule_warnings

    s = LRSchedule(total_steps=30, epochs=3, warmup_steps=10, milestones=[8, 11])
    notes = schedule_warnings(s, steps_per_epoch=10)
    assert "too short for its warm-up (10 steps, 1 epochs)" in notes[0]
    assert "shortened to 9 steps" in notes[0]
    assert "milestones at epoch 8, 11" in notes[1] and s(29) == 1.0
    assert schedule_warnings(LRSchedule(total_steps=120, epochs=12, warmup_steps=10), 10) == []
