"""The moving average of the weights (optim.ema): its update by hand, and in a run."""

import math

import torch
from safetensors.torch import load_file
from test_train import TINY_RUN
from torch import nn

from frcnn.cli import main
from frcnn.data.synth import write_synth
from frcnn.engine.averaging import WeightAverage


def test_the_average_follows_the_weights_ever_more_slowly():
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    average = WeightAverage(model, decay=0.5, tau=1.0)
    expected = 1.0
    for step, weight in enumerate((3.0, 5.0), start=1):
        with torch.no_grad():
            model[0].weight.fill_(weight)
            model[1].running_mean.fill_(2 * weight)
        model[1].num_batches_tracked += 1
        average.update(model)
        d = 0.5 * (1 - math.exp(-step))  # 0.3161, then 0.4323
        expected = d * expected + (1 - d) * weight
        assert average.factor() == d
        assert math.isclose(float(average.shadow["0.weight"]), expected, rel_tol=1e-6)
    assert math.isclose(expected, 0.43233 * (0.31606 * 1 + 0.68394 * 3) + 0.56767 * 5, rel_tol=1e-4)
    # buffers are averaged too (running_mean started at 0); counts are not
    mean = 0.43233 * (0.68394 * 6) + 0.56767 * 10
    assert math.isclose(float(average.shadow["1.running_mean"]), mean, rel_tol=1e-4)
    assert "1.num_batches_tracked" not in average.shadow
    with average.applied(model) as inside:
        assert math.isclose(float(inside[0].weight.detach()), expected, rel_tol=1e-6)
    assert float(model[0].weight.detach()) == 5.0 and float(model[1].running_mean) == 10.0


def test_a_run_saves_the_average_and_resumes_it_to_the_same_weights(tmp_path):
    write_synth(tmp_path / "train", 8, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1)
    common = ["--data", str(tmp_path / "train"), "--val", str(tmp_path / "val"), "--epochs", "3"]
    common += [*TINY_RUN, "run.deterministic=true", "optim.ema=true", "optim.ema_tau=2"]
    assert main(["train", "--out", str(tmp_path / "straight"), *common]) == 0
    split = ["train", "--out", str(tmp_path / "split"), *common]
    assert main([*split, "run.stop_after_epochs=2"]) == 0
    weights = tmp_path / "split" / "weights"
    own = load_file(str(next(weights.glob("last.state.epoch2.safetensors"))))
    saved = load_file(str(weights / "last.safetensors"))
    key = "roi_heads.predictor.cls_score.weight"
    assert not torch.equal(own[key], saved[key])  # the run resumes its weights, saves the average
    assert main(["train", "--resume", "--out", str(tmp_path / "split")]) == 0
    a = load_file(str(tmp_path / "straight" / "weights" / "last.safetensors"))
    b = load_file(str(weights / "last.safetensors"))
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=0, msg=name)
