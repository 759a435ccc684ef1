"""Each trainer hook on its own, with hand-computed expectations and fake clocks."""

import csv
import logging
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from frcnn.engine.distributed import DistInfo
from frcnn.engine.hooks import (
    EarlyStopping,
    ProgressiveResize,
    ProgressLog,
    ResultsCSV,
    StopAfterEpochs,
    TimeBudget,
    TopK,
)
from frcnn.engine.hooks import checkpoint as checkpoint_module
from frcnn.engine.optim import LRSchedule
from frcnn.io.atomic import atomic_link, atomic_write_text


class FakeTrainer(SimpleNamespace):
    """The trainer attributes hooks read, with a clock the test moves."""

    def __init__(self, **kw):
        defaults = dict(
            now=0.0,
            info=DistInfo(),
            device="cpu",
            epoch=0,
            first_epoch=0,
            epochs_total=12,
            global_step=0,
            steps_per_epoch=1000,
            batches_per_epoch=1000,
            accumulate=1,
            batch_size=4,
            num_val_images=0,
            eval_every=1,
            result=None,
            stop=None,
            ended=False,
            eval_seconds=None,
            out=Path("runs/x"),
        )
        super().__init__(**{**defaults, **kw})

    def clock(self):
        return self.now

    def elapsed(self):
        return self.now

    def request_stop(self, reason):
        self.stop = reason

    def end_epoch(self):
        self.ended = True

    def eval_seconds_per_run(self):
        return self.eval_seconds


def run_budgeted_epoch(trainer, hook, step_seconds):
    """Batches of ``step_seconds`` each until the hook ends the epoch (or the epoch ends)."""
    hook.before_epoch(trainer)
    for i in range(trainer.batches_per_epoch):
        trainer.now += step_seconds
        trainer.global_step += 1
        trainer.batch_in_epoch = i
        hook.after_step(trainer)
        if trainer.ended:
            break
    hook.after_epoch(trainer)


def test_time_budget_ends_a_too_long_first_epoch_inside_the_budget_decayed():
    # A machine so slow that one epoch (1000 steps of 1 s) is 16x the 1-minute budget.
    schedule = LRSchedule(total_steps=12_000, epochs=12, policy="cosine", warmup_steps=1000)
    trainer = FakeTrainer(schedule=schedule)
    hook = TimeBudget(minutes=1, max_epochs=12)
    run_budgeted_epoch(trainer, hook, step_seconds=1.0)
    assert trainer.ended and trainer.epochs_total == 1
    assert trainer.now <= 60 and trainer.global_step == 60
    assert schedule.total_steps == 60
    # the 1000-step warm-up cut to 30% of the 60 steps, then cosine down to zero
    assert schedule(0) == pytest.approx(0.001)
    assert schedule(9) == pytest.approx(
        (0.001 * 0.5 + 0.5) * 0.5 * (1 + math.cos(math.pi * 9 / 60))
    )
    assert schedule(18) == pytest.approx(0.5 * (1 + math.cos(math.pi * 18 / 60)))
    assert schedule(trainer.global_step) == pytest.approx(0.0, abs=1e-12)
    assert schedule(59) < 0.01


def test_time_budget_holds_back_evaluation_time():
    schedule = LRSchedule(total_steps=12_000, epochs=12, policy="cosine")
    trainer = FakeTrainer(schedule=schedule, eval_seconds=10.0, steps_per_epoch=100)
    trainer.batches_per_epoch = 100
    hook = TimeBudget(minutes=10, max_epochs=12)
    while trainer.stop is None and trainer.epoch < trainer.epochs_total:
        trainer.ended = False
        run_budgeted_epoch(trainer, hook, step_seconds=1.0)
        trainer.now += 10  # the epoch's evaluation
        if trainer.epoch + 1 >= trainer.epochs_total:
            break
        trainer.epoch += 1
    # per step 1 s + 10 s / 100 steps of evaluation; 20 s held back for the last evaluations
    # fit = (600 - 20) / 1.1 = 527 steps at the first fit; the final fit agrees within a step
    assert 520 <= trainer.global_step <= 530
    assert trainer.now <= 600 and trainer.epochs_total == trainer.epoch + 1 == 6


def test_time_budget_state_survives_a_resume():
    hook = TimeBudget(minutes=5, max_epochs=3)
    hook.batches, hook.train_seconds = 40, 12.5
    again = TimeBudget(minutes=5, max_epochs=3)
    again.load_state_dict(hook.state_dict())
    assert (again.batches, again.train_seconds) == (40, 12.5)


def test_topk_keeps_exactly_the_best_files(tmp_path):
    topk = TopK(2, tmp_path / "w")
    source = tmp_path / "last.safetensors"
    source.write_text("m")
    kept = [topk.offer(s, e, source) for e, s in enumerate([0.5, 0.7, 0.6, 0.8, 0.1, 0.7])]
    assert kept == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]  # a tie with the worst kept does not displace it
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [
        "epoch2.safetensors",  # named from 1, as in results.csv
        "epoch4.safetensors",
    ]
    assert topk.entries == [(0.8, 3), (0.7, 1)]


def test_early_stopping_stops_at_the_right_epoch():
    hook = EarlyStopping(patience=3)
    trainer = FakeTrainer()
    scores = [0.5, 0.6, None, 0.55, 0.58, 0.61, 0.6, 0.6, 0.59]
    for epoch, score in enumerate(scores):
        trainer.epoch = epoch
        trainer.result = None if score is None else SimpleNamespace(score=score)
        hook.after_epoch(trainer)
        if trainer.stop:
            break
    # best 0.61 at epoch 5; three evaluations without improvement: epochs 6, 7, 8
    assert epoch == 8 and "no improvement for 3 evaluations (best epoch 6" in trainer.stop
    restored = EarlyStopping(patience=3)
    restored.load_state_dict(hook.state_dict())
    assert (restored.best, restored.best_epoch, restored.stale) == (0.61, 5, 3)


def test_stop_after_epochs_leaves_the_rest_for_resume():
    hook = StopAfterEpochs(2)
    trainer = FakeTrainer(first_epoch=3, epochs_total=10)
    for epoch in (3, 4):
        trainer.epoch = epoch
        hook.after_epoch(trainer)
    assert "stopping after 2 epochs" in trainer.stop and "--resume" in trainer.stop
    last = FakeTrainer(first_epoch=8, epochs_total=10, epoch=9)
    hook.after_epoch(last)  # the run's last epoch: nothing to stop
    assert last.stop is None


def test_progressive_resize_sets_the_size_per_epoch():
    transform = SimpleNamespace(min_size=(800,), max_size=1333)
    config = {"min_size": 800, "max_size": 1333}
    trainer = FakeTrainer(raw_model=SimpleNamespace(transform=transform, config=config))
    hook = ProgressiveResize([[0, 160], [3, 256]])
    sizes = []
    for epoch in range(5):
        trainer.epoch = epoch
        hook.before_epoch(trainer)
        sizes.append((transform.min_size, transform.max_size))
        # The configuration a model file is rebuilt from follows the transform.
        assert (config["min_size"], config["max_size"]) == (sizes[-1][1],) * 2
    assert sizes == [((160,), 160)] * 3 + [((256,), 256)] * 2


def test_results_csv_drops_rows_a_resume_will_train_again(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("epoch,lr\n0,0.1\n1,0.1\n2,0.1\n")
    ResultsCSV(path).before_train(FakeTrainer(first_epoch=2))
    with path.open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]


def test_progress_log_prints_at_a_steady_interval(caplog):
    schedule = LRSchedule(total_steps=100, epochs=1, policy="constant")
    trainer = FakeTrainer(schedule=schedule, epochs_total=1, batches_per_epoch=100)
    trainer.step_losses, trainer.step_images = {"loss_classifier": 0.5}, 4
    hook = ProgressLog(interval=30)
    hook.before_epoch(trainer)
    with caplog.at_level(logging.INFO, logger="frcnn"):
        for i in range(100):
            trainer.now += 2.0  # 2 s per batch of 4 images
            trainer.global_step, trainer.batch_in_epoch = i + 1, i
            hook.after_step(trainer)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6  # at 30, 60, ... 180 s
    assert lines[0] == "epoch 1/1 step 15/100: 2.0 images/s, classifier 0.5000, 2m50s left"


def test_eval_schedule_every_n_and_the_last_epoch():
    from frcnn.engine.hooks import EvalSchedule

    trainer = FakeTrainer(epochs_total=5, raw_model="m")
    trainer.evaluate = lambda model: f"result of {model}"
    hook = EvalSchedule(every=2)
    evaluated = []
    for epoch in range(5):
        trainer.epoch, trainer.result = epoch, None
        hook.after_epoch(trainer)
        evaluated.append(trainer.result is not None)
    assert evaluated == [False, True, False, True, True]  # epochs 2, 4 and the last (5)
    with pytest.raises(ValueError, match="eval.every must be >= 1"):
        EvalSchedule(0)


def test_checkpointer_saves_last_every_epoch_and_best_on_improvement(tmp_path, monkeypatch):
    from frcnn.engine.hooks import Checkpointer

    saved = []

    def save(model, path):  # each epoch's weights differ: "e<epoch>"
        saved.append(Path(path).name)
        atomic_write_text(path, f"e{trainer.epoch}")
        return Path(path)

    monkeypatch.setattr(checkpoint_module, "save_model", save)
    hook = Checkpointer(tmp_path, top_k=1)
    trainer = FakeTrainer(raw_model="m", best_epoch=None)
    for epoch, score in enumerate([0.3, None, 0.2, 0.5]):
        trainer.epoch = epoch
        trainer.result = None if score is None else SimpleNamespace(score=score)
        hook.after_epoch(trainer)
        if epoch == 0:  # best and top-1 are the same file as last, not copies
            names = ("last", "best", "epoch1")
            assert len({(tmp_path / f"{n}.safetensors").stat().st_ino for n in names}) == 1
    assert saved == ["last.safetensors"] * 4  # the weights are written once per epoch
    assert (tmp_path / "best.safetensors").read_text() == "e3"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.safetensors",
        "epoch4.safetensors",
        "last.safetensors",
    ]
    assert (tmp_path / "best.safetensors").samefile(tmp_path / "last.safetensors")
    assert trainer.best_epoch == 3 and hook.state_dict() == {
        "topk": [[0.5, 3]],
        "best": 0.5,
        "best_epoch": 3,
        "file_numbers": "from 1",
    }


def test_checkpointer_keeps_best_when_last_is_rewritten(tmp_path):
    from frcnn.engine.hooks import Checkpointer

    hook = Checkpointer(tmp_path, top_k=0)
    last = tmp_path / "last.safetensors"
    atomic_write_text(last, "e0")
    atomic_link(last, tmp_path / "best.safetensors")
    atomic_write_text(last, "e1")  # the next epoch replaces last's name, not its content
    assert (tmp_path / "best.safetensors").read_text() == "e0"
    # a run from before file numbers counted from 1 has its top-k files renamed on resume
    for e in (3, 4):
        (tmp_path / f"epoch{e}.safetensors").write_text(f"e{e}")
    hook.load_state_dict({"topk": [[0.5, 3], [0.6, 4]], "best": 0.6, "best_epoch": 4})
    assert (tmp_path / "epoch5.safetensors").read_text() == "e4"
    assert (tmp_path / "epoch4.safetensors").read_text() == "e3"


def test_epoch_log_line(caplog):
    from frcnn.engine.hooks import EpochLog

    trainer = FakeTrainer(epoch=1, epochs_total=3, epoch_start=0.0, now=12.34)
    trainer.stats = SimpleNamespace(
        losses={"loss_classifier": 0.5, "loss_box_reg": 0.25},
        images=8,
        aug_dropped=2,
        nan_skipped=0,
    )
    with caplog.at_level(logging.INFO, logger="frcnn"):
        EpochLog().after_epoch(trainer)
    assert caplog.records[-1].getMessage() == (
        "epoch 2/3: classifier 0.5000 box_reg 0.2500 (8 images, 12.3 s); "
        "augmentation dropped 2 boxes"
    )


def test_tensorboard_writes_the_epoch_row(tmp_path):
    pytest.importorskip("tensorboard")
    from frcnn.engine.hooks import TensorBoard

    trainer = FakeTrainer(epoch=0, epoch_start=0.0, now=1.0)
    trainer.stats = SimpleNamespace(losses={"loss_classifier": 0.5})
    trainer.optimizer = SimpleNamespace(param_groups=[{"lr": 0.01}])
    hook = TensorBoard(tmp_path)
    hook.before_train(trainer)
    hook.after_epoch(trainer)
    hook.after_train(trainer)
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_final_report_evaluates_best_when_it_is_not_the_last_epoch(tmp_path, monkeypatch):
    from frcnn.engine.hooks import FinalReport
    from frcnn.engine.hooks import report as report_module

    monkeypatch.setattr(report_module, "load_model", lambda path, device: f"model {path.name}")
    written = []
    result = SimpleNamespace(to_json=lambda: {"AP": 1.0})
    trainer = FakeTrainer(epoch=4, best_epoch=2, weights=tmp_path, out=tmp_path, metrics={})
    trainer.evaluate = lambda model: result if model == "model best.safetensors" else None
    hook = FinalReport()
    hook._plots = lambda trainer, result: None
    hook._report = lambda trainer, shown: written.append((trainer.out, shown))
    hook.after_train(trainer)
    assert trainer.metrics == {"AP": 1.0} and written == [(tmp_path, result)]


@pytest.mark.parametrize(("heavy", "warned"), [(True, True), (False, False)])
def test_a_gpu_sized_recipe_on_a_cpu_is_pointed_to_cpu_fast(heavy, warned, frcnn_log):
    import torch

    from frcnn.engine.hooks import CpuRecipeAdvice
    from frcnn.modeling.builder import ModelConfig

    config = vars(ModelConfig()) if heavy else {"representation_size": 256}
    trainer = FakeTrainer(
        device=torch.device("cpu"), raw_model=SimpleNamespace(config=config), step_images=4
    )
    hook = CpuRecipeAdvice()
    hook.before_epoch(trainer)
    for batch in range(5):  # 4 images a batch, 2 s each: 2 images/s
        trainer.now += 2.0
        trainer.batch_in_epoch = batch
        hook.after_step(trainer)
    seen = frcnn_log
    assert len(seen) == int(warned)
    if warned:
        assert "2000 proposals, 512 RoIs per image, 1024-wide box head" in seen[0]
        assert "2.0 images/s" in seen[0] and "--config cpu-fast" in seen[0]


def test_atomic_writes_get_a_plain_files_permissions(tmp_path):
    from frcnn.io.atomic import atomic_write_text

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "report.html", "<html></html>")
    assert (tmp_path / "report.html").stat().st_mode == plain.stat().st_mode
