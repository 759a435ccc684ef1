"""The trainer with its hooks: callbacks, resume of every hook's state, a fake slow machine
under a time budget, gradient accumulation, and no per-step synchronisation without a budget."""

import csv

import pytest
import torch
from test_train import TINY_RUN

import frcnn
from frcnn.config import load_config
from frcnn.data.synth import write_synth
from frcnn.engine import trainer as trainer_module
from frcnn.engine.loop import StepOptions, train_one_epoch
from frcnn.engine.trainer import Trainer, _upgrade_state
from frcnn.io.checkpoint import load_training_state


def _config(data, out, *extra, **values):
    return load_config(
        None,
        [*TINY_RUN, *extra],
        **{
            "data.train": str(data / "train"),
            "data.val": str(data / "val"),
            "run.out": str(out),
            **values,
        },
    )


class EpochCounter(frcnn.Callback):
    """A user callback with state: counts epochs across resumes and records events."""

    def __init__(self):
        self.epochs = 0
        self.events = []

    def before_train(self, state):
        self.events.append("before_train")

    def after_epoch(self, state):
        self.epochs += 1
        self.events.append(("after_epoch", state.epoch, state.result is not None))

    def after_train(self, state):
        self.events.append("after_train")

    def state_dict(self):
        return {"epochs": self.epochs}

    def load_state_dict(self, state):
        self.epochs = state["epochs"]


def test_callbacks_and_resume_restore_every_hook(tmp_path):
    write_synth(tmp_path / "train", 8, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1)
    out = tmp_path / "run"
    first = EpochCounter()
    cfg = _config(
        tmp_path, out, "run.stop_after_epochs=1", "eval.patience=5", **{"schedule.epochs": 3}
    )
    frcnn.train(cfg, callbacks=[first])
    assert first.events == ["before_train", ("after_epoch", 0, True), "after_train"]
    state = load_training_state(out / "weights" / "last.state.pt")
    assert set(state["hooks"]) == {
        "CpuRecipeAdvice",
        "CpuThreads",
        "EvalSchedule",
        "ResultsCSV",
        "TensorBoard",
        "EpochLog",
        "ProgressLog",
        "Checkpointer",
        "EarlyStopping",
        "StopAfterEpochs",
        "FinalReport",
        "EpochCounter",
    }
    assert state["hooks"]["EpochCounter"] == {"epochs": 1}
    assert state["hooks"]["Checkpointer"]["best_epoch"] == 0
    second = EpochCounter()
    again = _config(tmp_path, out, "eval.patience=5", **{"schedule.epochs": 3, "run.resume": True})
    resumed = frcnn.train(again, callbacks=[second])
    assert second.epochs == 3  # 1 restored + 2 trained
    assert resumed.epochs == 3
    with (out / "results.csv").open() as f:
        scores = [float(r["score"]) for r in csv.DictReader(f)]
    best = scores.index(max(scores))
    early = load_training_state(out / "weights" / "last.state.pt")["hooks"]["EarlyStopping"]
    assert early == {"best": max(scores), "best_epoch": best, "stale": len(scores) - 1 - best}
    assert resumed.best_epoch == best + 1  # people count epochs from 1


def test_a_slow_machine_still_ends_inside_the_budget_with_a_decayed_rate(tmp_path):
    write_synth(tmp_path / "train", 12, 96, seed=0)
    write_synth(tmp_path / "val", 4, 96, seed=1)
    cfg = _config(
        tmp_path,
        tmp_path / "run",
        "data.batch_size=1",
        **{"schedule.epochs": 12, "schedule.time_budget": 1.0},
    )
    holder = {}

    def clock():  # 10 s per optimiser step: one 12-step epoch is twice the 60 s budget
        t = holder.get("trainer")
        return 10.0 * t.state.global_step if t is not None and hasattr(t, "state") else 0.0

    trainer = holder["trainer"] = Trainer(cfg, clock=clock)
    result = trainer.fit()
    assert result.epochs == 1 and result.metrics  # one (partial) epoch, evaluated
    state = trainer.state
    assert 2 <= state.global_step <= 6 and state.elapsed() <= 60  # evaluations cost 0 s here
    assert trainer.schedule.total_steps == state.global_step
    # multistep milestones 8 and 11 of 12 epochs, compressed onto the fitted steps: both passed
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.01)


def test_no_per_step_synchronisation_without_a_budget(tmp_path, monkeypatch):
    write_synth(tmp_path / "train", 8, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1)
    calls = []
    real = trainer_module.broadcast
    monkeypatch.setattr(
        trainer_module, "broadcast", lambda v, info: calls.append(v) or real(v, info)
    )
    frcnn.train(_config(tmp_path, tmp_path / "run", "data.batch_size=1", **{"schedule.epochs": 2}))
    assert len(calls) == 3  # the run folder, then once per epoch (stop decisions); 8 steps each


class MeanOfImages(torch.nn.Module):
    """loss = w * mean(images): the gradient of w is the batch's mean pixel value."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(10.0))

    def forward(self, images, targets):
        return {"loss": self.w * torch.stack(images).mean()}


def test_accumulation_steps_the_leftover_batches_with_their_mean_gradient():
    model = MeanOfImages()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    batches = [([torch.full((1, 2, 2), v)], [{}]) for v in (1.0, 2.0, 3.0)]
    options = StepOptions(accumulate=2)
    train_one_epoch(model, batches, optimizer, scheduler, None, options, torch.device("cpu"), 0)
    # step 1: mean of batches 1 and 2 (1.5); step 2: the leftover batch 3 alone (3)
    assert scheduler.last_epoch == 2
    assert float(model.w.detach()) == 10.0 - 1.5 - 3.0


def test_a_0_1_0_resume_state_is_upgraded():
    old = {"epoch": 2, "topk": [[0.5, 1]], "best_score": 0.5, "best_epoch": 1, "stale": 1}
    new = _upgrade_state(old)
    assert new["hooks"]["Checkpointer"] == {"topk": [[0.5, 1]], "best": 0.5, "best_epoch": 1}
    assert new["hooks"]["EarlyStopping"] == {"best": 0.5, "best_epoch": 1, "stale": 1}


def test_resume_of_a_finished_run_refuses_or_extends(tmp_path, capsys):
    from frcnn.cli import main

    write_synth(tmp_path / "train", 8, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1)
    out = tmp_path / "run"
    common = ["--data", str(tmp_path / "train"), "--val", str(tmp_path / "val"), *TINY_RUN]
    assert main(["train", "--epochs", "1", "--out", str(out), *common]) == 0
    config_before = (out / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out)]) == 2
    assert "already finished (epoch 1 of 1); pass --epochs N with N > 1" in capsys.readouterr().err
    assert (out / "config.yaml").read_text() == config_before  # a failed resume writes nothing
    assert main(["train", "--resume", "--out", str(out), "--epochs", "2"]) == 0
    with (out / "results.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    assert load_training_state(out / "weights" / "last.state.pt")["epochs_configured"] == 2


def test_validation_without_boxes_warns_and_chooses_no_best(tmp_path, capsys):
    write_synth(tmp_path / "train", 6, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1, empty_prob=1.0)  # negatives only
    result = frcnn.train(_config(tmp_path, tmp_path / "run", **{"schedule.epochs": 1}))
    messages = capsys.readouterr().err.replace("\n", " ")
    assert "validation data holds no boxes: mAP, F1 and the score cannot be measured" in messages
    assert result.best is None and not list((tmp_path / "run" / "weights").glob("epoch*"))


def test_a_validation_class_unseen_in_training_is_named():
    from frcnn.data.records import DetectionDataset, ImageRecord
    from frcnn.engine.data import data_warnings

    names = ["cat", "dog", "eel"]
    train = DetectionDataset(".", names, [ImageRecord("a", None, 9, 9, [[0, 0, 4, 4]], [1])])
    val = DetectionDataset(".", names, [ImageRecord("b", None, 9, 9, [[0, 0, 4, 4]] * 2, [2, 3])])
    assert data_warnings(train, val) == [
        "validation classes with no training boxes (they cannot be learned): dog, eel"
    ]


def test_a_one_epoch_run_writes_its_weights_once(tmp_path):
    write_synth(tmp_path / "train", 4, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1)
    out = tmp_path / "run"
    # a constant score so epoch 1 is the best and the top-k file
    frcnn.train(_config(tmp_path, out, **{"schedule.epochs": 1}))
    weights = out / "weights"
    names = sorted(p.name for p in weights.iterdir())
    assert names == [
        "best.safetensors",
        "epoch1.safetensors",
        "last.safetensors",
        "last.state.epoch1.safetensors",
        "last.state.pt",
    ]
    last = weights / "last.safetensors"
    assert all(last.samefile(weights / n) for n in names if n.endswith(".safetensors"))
    state = load_training_state(weights / "last.state.pt")
    assert state["model_file"] == "last.state.epoch1.safetensors" and "model" not in state
    with (out / "results.csv").open() as f:
        row = next(csv.DictReader(f))
    assert row["epoch"] == "1" and float(row["val_loss_classifier"]) > 0  # validation losses


def test_validation_losses_leave_the_model_and_random_state_as_they_were(tmp_path):
    from frcnn.data.loader import DetectionTorchDataset, build_loader
    from frcnn.data.records import DetectionDataset
    from frcnn.engine.loop import validation_losses

    write_synth(tmp_path / "v", 3, 96, seed=1)
    ds, _ = frcnn.data.check_dataset(frcnn.data.read_dataset(tmp_path / "v"), "header")
    model = frcnn.build_model(
        "resnet18_fpn",
        6,
        norm="bn",
        fpn_channels=16,
        min_size=96,
        max_size=96,
        representation_size=32,
    )
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    loader = build_loader(DetectionTorchDataset(ds), 2)
    means, n = validation_losses(model, loader, torch.device("cpu"))
    assert n == 3 and set(means) == {
        "loss_classifier",
        "loss_box_reg",
        "loss_objectness",
        "loss_rpn_box_reg",
    }
    assert not model.training and torch.equal(torch.get_rng_state(), rng)
    for k, v in model.state_dict().items():  # batch-norm statistics untouched
        assert torch.equal(v, before[k]), k
    assert isinstance(ds, DetectionDataset)


def test_another_class_count_warns_for_fine_tuning_and_stops_a_resume(tmp_path, frcnn_log):
    from types import SimpleNamespace

    from frcnn.engine.model import load_initial_weights

    small = dict(fpn_channels=16, representation_size=32, min_size=96, max_size=96)
    five = frcnn.build_model("resnet18_fpn", 6, **small)
    path = frcnn.save_model(five, tmp_path / "five.safetensors")
    two = frcnn.build_model("resnet18_fpn", 3, **small)
    load_initial_weights(two, str(path))
    assert any("predicts 6 classes (background included), the data has 3" in m for m in frcnn_log)
    # the body came from the file, the predictor is fresh
    torch.testing.assert_close(two.backbone.body.conv1.weight, five.backbone.body.conv1.weight)
    fake = SimpleNamespace(raw_model=two, out=tmp_path)
    with pytest.raises(ValueError, match="trained for 6 classes .* the data now has 3"):
        Trainer._load_resumed(fake, five.state_dict())


def test_a_run_folder_in_use_is_refused_naming_its_process(tmp_path):
    import os

    from frcnn.engine.run_folder import RunLock
    from frcnn.errors import InputError

    write_synth(tmp_path / "train", 4, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1)
    out = tmp_path / "run"
    holder = RunLock(out)  # another process training into it
    with pytest.raises(InputError, match=f"process {os.getpid()} is training into it"):
        Trainer(_config(tmp_path, out, **{"run.resume": False}))
    holder.release()
    frcnn.train(_config(tmp_path, out, "data.batch_size=2"))  # free again: it trains
    assert (out / "weights" / "last.safetensors").is_file()


def test_a_full_disk_while_saving_leaves_no_results_row_for_that_epoch(tmp_path, monkeypatch):
    import errno

    from frcnn.engine.hooks import checkpoint

    write_synth(tmp_path / "train", 4, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1)
    real, calls = checkpoint.save_model, []

    def save(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_model", save)
    out = tmp_path / "run"
    cfg = _config(tmp_path, out, "data.batch_size=2", **{"schedule.epochs": 3})
    with pytest.raises(OSError, match="No space left"):
        frcnn.train(cfg)
    with (out / "results.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]  # epoch 2's weights: not saved
    assert not [p for p in (out / "weights").iterdir() if p.name.endswith(".tmp")]
