"""An evaluation the time budget can afford: the plan by hand, and a budgeted run on a fake
clock whose full evaluation would cost more than the budget."""

import numpy as np
import pytest
from test_trainer import _config

import frcnn
from frcnn.data.synth import write_synth
from frcnn.engine import eval_budget
from frcnn.engine import trainer as trainer_module
from frcnn.engine.eval_budget import EvalCost, plan_evaluation
from frcnn.engine.trainer import Trainer


def test_an_affordable_evaluation_is_left_whole():
    # 20 images x (0.25 + 0.25) s = 10 s <= 20% of 60 s
    plan = plan_evaluation(20, EvalCost(0.25, 0.25, True), 60, seed=0)
    assert plan.indices is None and plan.val_loss and plan.seconds == 10 and plan.note is None


def test_the_validation_loss_pass_goes_first():
    # 20 x 0.5 = 10 s of predictions fit in 12 s; with the losses (20 s) they do not
    plan = plan_evaluation(20, EvalCost(0.5, 0.5, True), 60, seed=0)
    assert plan.indices is None and not plan.val_loss and plan.seconds == 10
    assert "skips the validation-loss pass" in plan.note and "about 20 s" in plan.note


def test_a_random_subset_that_fits_in_a_fifth_of_the_budget():
    # 12 s / 1.25 s per image = 9.6 -> 9 images, 11.25 s
    plan = plan_evaluation(200, EvalCost(1.25, 0.75, True), 60, seed=3)
    assert len(plan.indices) == 9 and plan.seconds == 9 * 1.25 and not plan.val_loss
    assert np.all(np.diff(plan.indices) > 0) and plan.indices.max() < 200
    assert "a random 9 of the 200 validation images" in plan.note
    assert "about 400 s" in plan.note  # 200 x (1.25 + 0.75)
    again = plan_evaluation(200, EvalCost(1.25, 0.75, True), 60, seed=3)
    assert np.array_equal(plan.indices, again.indices)  # the same subset every epoch
    # two ranks predict half each: 24 / 1.25 = 19.2 -> 19 images, 19 x 1.25 / 2 s
    two = plan_evaluation(200, EvalCost(1.25, None), 60, seed=3, ranks=2)
    assert len(two.indices) == 19 and two.seconds == pytest.approx(11.875)
    # never fewer than 4 images (12 / 10 = 1.2); a pass not measured costs what predicting does
    few = plan_evaluation(200, EvalCost(10.0, None, True), 60, seed=0)
    assert len(few.indices) == 4 and "about 4000 s" in few.note


def test_a_budgeted_run_evaluates_what_the_budget_affords(tmp_path, monkeypatch, frcnn_log):
    """2 s per training step, 1 s per validation image predicted and 1 s per image of
    validation losses: a full evaluation of 40 images is 80 s, more than the 60 s budget.
    One image is predicted to measure it (1 s); the losses are not measured (the
    predictions alone are over 20% of the budget)."""
    write_synth(tmp_path / "train", 8, 96, seed=0)
    write_synth(tmp_path / "val", 40, 96, seed=1)
    clock = {"now": 0.0}

    def charged(real):
        def run(*args, **kwargs):
            out = real(*args, **kwargs)
            images = out[1] if isinstance(out, tuple) else len(out)
            clock["now"] += images
            return out

        return run

    for module in (eval_budget, trainer_module):
        monkeypatch.setattr(module, "predict_batches", charged(module.predict_batches))
        monkeypatch.setattr(module, "validation_losses", charged(module.validation_losses))

    class Steps(frcnn.Callback):
        def after_step(self, state):
            clock["now"] += 2.0

    cfg = _config(tmp_path, tmp_path / "run", "data.batch_size=2", **{"schedule.time_budget": 1.0})
    trainer = Trainer(cfg, callbacks=[Steps()], clock=lambda: clock["now"])
    result = trainer.fit()
    assert trainer.state.elapsed() <= 60 * 1.15
    assert len(trainer.val_data) == 12 and result.metrics  # 12 s / 1 s per image
    assert trainer.state.val_losses == {}
    notes = [m for m in frcnn_log if "a random 12 of the 40 validation images" in m]
    assert len(notes) == 1 and "about 80 s" in notes[0]
