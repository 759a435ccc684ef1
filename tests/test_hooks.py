"""Each trainer hook on its own, with hand-computed expectations and fake clocks."""

import csv
import logging
import math
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

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
from frcnn.engine.state import EVALUATED, NEW_BEST, WEIGHTS_SAVED, Event, TrainState
from frcnn.io.atomic import atomic_link, atomic_write_text


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_state(**values) -> TrainState:
    """The real state type, as a run of 12 epochs of 1000 steps would start it, with a
    :class:`Clock` (``state.clock.now``) and ``values`` applied."""
    defaults = dict(
        epoch=0,
        epochs_total=12,
        steps_per_epoch=1000,
        batches_per_epoch=1000,
        out=Path("runs/x"),
        clock=Clock(),
        device=torch.device("cpu"),
    )
    return TrainState(**{**defaults, **values})


def evaluated(state: TrainState, score: float | None) -> None:
    """The epoch's evaluation announced, as EvalSchedule does (none for ``None``)."""
    if score is not None:
        state.emit(EVALUATED, result=SimpleNamespace(score=score))


def run_budgeted_epoch(state, hook, step_seconds):
    """Batches of ``step_seconds`` each until the hook ends the epoch (or the epoch ends)."""
    hook.before_epoch(state)
    for i in range(state.batches_per_epoch):
        state.clock.now += step_seconds
        state.global_step += 1
        state.batch_in_epoch = i
        hook.after_step(state)
        if state.epoch_ending:
            break
    hook.after_epoch(state)


def test_time_budget_ends_a_too_long_first_epoch_inside_the_budget_decayed():
    # A machine so slow that one epoch (1000 steps of 1 s) is 16x the 1-minute budget.
    schedule = LRSchedule(total_steps=12_000, epochs=12, policy="cosine", warmup_steps=1000)
    state = make_state(schedule=schedule)
    hook = TimeBudget(minutes=1, max_epochs=12)
    run_budgeted_epoch(state, hook, step_seconds=1.0)
    assert state.epoch_ending and state.epochs_total == 1
    assert state.clock.now <= 60 and state.global_step == 60
    assert schedule.total_steps == 60
    # the 1000-step warm-up cut to 30% of the 60 steps, then cosine down to zero
    assert schedule(0) == pytest.approx(0.001)
    assert schedule(9) == pytest.approx(
        (0.001 * 0.5 + 0.5) * 0.5 * (1 + math.cos(math.pi * 9 / 60))
    )
    assert schedule(18) == pytest.approx(0.5 * (1 + math.cos(math.pi * 18 / 60)))
    assert schedule(state.global_step) == pytest.approx(0.0, abs=1e-12)
    assert schedule(59) < 0.01


def test_time_budget_holds_back_evaluation_time():
    schedule = LRSchedule(total_steps=12_000, epochs=12, policy="cosine")
    state = make_state(
        schedule=schedule, eval_seconds=[10.0], steps_per_epoch=100, batches_per_epoch=100
    )
    hook = TimeBudget(minutes=10, max_epochs=12)
    while state.stop_reason is None and state.epoch < state.epochs_total:
        state.epoch_ending = False
        run_budgeted_epoch(state, hook, step_seconds=1.0)
        state.clock.now += 10  # the epoch's evaluation
        if state.epoch + 1 >= state.epochs_total:
            break
        state.epoch += 1
    # per step 1 s + 10 s / 100 steps of evaluation; 20 s held back for the last evaluations
    # fit = (600 - 20) / 1.1 = 527 steps at the first fit; the final fit agrees within a step
    assert 520 <= state.global_step <= 530
    assert state.clock.now <= 600 and state.epochs_total == state.epoch + 1 == 6


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
    state = make_state()
    scores = [0.5, 0.6, None, 0.55, 0.58, 0.61, 0.6, 0.6, 0.59]
    for epoch, score in enumerate(scores):
        state.epoch = epoch
        evaluated(state, score)
        hook.after_epoch(state)
        if state.stop_reason:
            break
    # best 0.61 at epoch 5; three evaluations without improvement: epochs 6, 7, 8
    assert epoch == 8 and "no improvement for 3 evaluations (best epoch 6" in state.stop_reason
    restored = EarlyStopping(patience=3)
    restored.load_state_dict(hook.state_dict())
    assert (restored.best, restored.best_epoch, restored.stale) == (0.61, 5, 3)


def test_stop_after_epochs_leaves_the_rest_for_resume():
    hook = StopAfterEpochs(2)
    state = make_state(first_epoch=3, epochs_total=10)
    for epoch in (3, 4):
        state.epoch = epoch
        hook.after_epoch(state)
    assert "stopping after 2 epochs" in state.stop_reason and "--resume" in state.stop_reason
    last = make_state(first_epoch=8, epochs_total=10, epoch=9)
    hook.after_epoch(last)  # the run's last epoch: nothing to stop
    assert last.stop_reason is None


def test_progressive_resize_sets_the_size_per_epoch():
    transform = SimpleNamespace(min_size=(800,), max_size=1333)
    config = {"min_size": 800, "max_size": 1333}
    model = SimpleNamespace(transform=transform, config=config)
    state = make_state(trainer=SimpleNamespace(raw_model=model))
    hook = ProgressiveResize([[0, 160], [3, 256]])
    sizes = []
    for epoch in range(5):
        state.epoch = epoch
        hook.before_epoch(state)
        sizes.append((transform.min_size, transform.max_size))
        # The configuration a model file is rebuilt from follows the transform.
        assert (config["min_size"], config["max_size"]) == (sizes[-1][1],) * 2
    assert sizes == [((160,), 160)] * 3 + [((256,), 256)] * 2


def test_results_csv_drops_rows_a_resume_will_train_again(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("epoch,lr\n0,0.1\n1,0.1\n2,0.1\n")
    ResultsCSV(path).before_train(make_state(first_epoch=2))
    with path.open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]


def test_progress_log_prints_at_a_steady_interval(caplog):
    schedule = LRSchedule(total_steps=100, epochs=1, policy="constant")
    state = make_state(schedule=schedule, epochs_total=1, batches_per_epoch=100)
    state.step_losses, state.step_images = {"loss_classifier": 0.5}, 4
    hook = ProgressLog(interval=30)
    hook.before_epoch(state)
    with caplog.at_level(logging.INFO, logger="frcnn"):
        for i in range(100):
            state.clock.now += 2.0  # 2 s per batch of 4 images
            state.global_step, state.batch_in_epoch = i + 1, i
            hook.after_step(state)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6  # at 30, 60, ... 180 s
    assert lines[0] == "epoch 1/1 step 15/100: 2.0 images/s, classifier 0.5000, 2m50s left"


def test_eval_schedule_every_n_and_the_last_epoch():
    from frcnn.engine.hooks import EvalSchedule

    services = SimpleNamespace(
        averaged=lambda: nullcontext("m"), evaluate=lambda model: f"result of {model}"
    )
    state = make_state(epochs_total=5, trainer=services)
    hook = EvalSchedule(every=2)
    done = []
    for epoch in range(5):
        state.epoch = epoch
        hook.after_epoch(state)
        done.append(state.result)
    # epochs 2, 4 and the last (5), each announced with its result
    assert done == [None, "result of m", None, "result of m", "result of m"]
    assert [e.epoch for e in state.events if e.name == EVALUATED] == [1, 3, 4]
    with pytest.raises(ValueError, match="eval.every must be >= 1"):
        EvalSchedule(0)


def test_checkpointer_saves_last_every_epoch_and_best_on_improvement(tmp_path, monkeypatch):
    from frcnn.engine.hooks import Checkpointer

    saved = []

    def save(model, path):  # each epoch's weights differ: "e<epoch>"
        saved.append(Path(path).name)
        atomic_write_text(path, f"e{state.epoch}")
        return Path(path)

    monkeypatch.setattr(checkpoint_module, "save_model", save)
    hook = Checkpointer(tmp_path, top_k=1)
    state = make_state(trainer=SimpleNamespace(averaged=lambda: nullcontext("m")))
    for epoch, score in enumerate([0.3, None, 0.2, 0.5]):
        state.epoch = epoch
        evaluated(state, score)
        hook.after_epoch(state)
        # the weights saved are announced, for the resume state to link
        assert state.last(WEIGHTS_SAVED, epoch).data["path"] == tmp_path / "last.safetensors"
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
    assert [e.epoch for e in state.events if e.name == NEW_BEST] == [0, 3]
    assert state.best_epoch == 3 and hook.state_dict() == {
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

    state = make_state(epoch=1, epochs_total=3, epoch_start=0.0)
    state.clock.now = 12.34
    state.stats = SimpleNamespace(
        losses={"loss_classifier": 0.5, "loss_box_reg": 0.25},
        images=8,
        aug_dropped=2,
        nan_skipped=0,
    )
    with caplog.at_level(logging.INFO, logger="frcnn"):
        EpochLog().after_epoch(state)
    assert caplog.records[-1].getMessage() == (
        "epoch 2/3: classifier 0.5000 box_reg 0.2500 (8 images, 12.3 s); "
        "augmentation dropped 2 boxes"
    )


def test_tensorboard_writes_the_epoch_row(tmp_path):
    pytest.importorskip("tensorboard")
    from frcnn.engine.hooks import TensorBoard

    state = make_state(epoch=0, epoch_start=0.0, lr=0.01)
    state.clock.now = 1.0
    state.stats = SimpleNamespace(losses={"loss_classifier": 0.5})
    hook = TensorBoard(tmp_path)
    hook.before_train(state)
    hook.after_epoch(state)
    hook.after_train(state)
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_final_report_evaluates_best_when_it_is_not_the_last_epoch(tmp_path, monkeypatch):
    from frcnn.engine.hooks import FinalReport
    from frcnn.engine.hooks import report as report_module

    monkeypatch.setattr(report_module, "load_model", lambda path, device: f"model {path.name}")
    written = []
    result = SimpleNamespace(to_json=lambda: {"AP": 1.0})
    services = SimpleNamespace(
        evaluate=lambda model: result if model == "model best.safetensors" else None
    )
    state = make_state(epoch=4, weights=tmp_path, out=tmp_path, trainer=services)
    state.events.append(Event(NEW_BEST, 2, {"score": 0.9}))  # best.safetensors is epoch 3's
    hook = FinalReport()
    hook._plots = lambda state, result: None
    hook._report = lambda state, shown: written.append((state.out, shown))
    hook.after_train(state)
    assert state.metrics == {"AP": 1.0} and written == [(tmp_path, result)]


@pytest.mark.parametrize(("heavy", "warned"), [(True, True), (False, False)])
def test_a_gpu_sized_recipe_on_a_cpu_is_pointed_to_cpu_fast(heavy, warned, frcnn_log):
    from frcnn.engine.hooks import CpuRecipeAdvice
    from frcnn.modeling.builder import ModelConfig

    config = vars(ModelConfig()) if heavy else {"representation_size": 256}
    cfg = SimpleNamespace(model=SimpleNamespace(weights=None))
    services = SimpleNamespace(raw_model=SimpleNamespace(config=config), cfg=cfg)
    state = make_state(trainer=services, step_images=4)
    hook = CpuRecipeAdvice()
    hook.before_epoch(state)
    for batch in range(5):  # 4 images a batch, 2 s each: 2 images/s
        state.clock.now += 2.0
        state.batch_in_epoch = batch
        hook.after_step(state)
    seen = frcnn_log
    assert len(seen) == int(warned)
    if warned:
        assert "2000 proposals, 512 RoIs per image, 1024-wide box head" in seen[0]
        assert "2.0 images/s" in seen[0] and "--config cpu-fast" in seen[0]


@pytest.mark.parametrize(
    ("name", "advice"),
    [("resnet50_fpn", "--model mobilenet_v3_large_320_fpn"), ("mobilenet_v3_large_320_fpn", None)],
)
def test_a_coco_start_on_a_cpu_is_pointed_to_the_cpu_coco_model(name, advice, frcnn_log):
    from frcnn.engine.hooks import CpuRecipeAdvice
    from frcnn.modeling.builder import model_config

    config = vars(model_config(name, 91))
    cfg = SimpleNamespace(model=SimpleNamespace(weights="coco"))
    services = SimpleNamespace(raw_model=SimpleNamespace(config=config), cfg=cfg)
    state = make_state(trainer=services, step_images=2)
    hook = CpuRecipeAdvice()
    hook.before_epoch(state)
    for batch in range(5):
        state.clock.now += 2.0
        state.batch_in_epoch = batch
        hook.after_step(state)
    if advice is None:
        assert frcnn_log == []  # the model suggested for a CPU is not warned about
    else:
        assert len(frcnn_log) == 1 and advice in frcnn_log[0]


def test_atomic_writes_get_a_plain_files_permissions(tmp_path):
    from frcnn.io.atomic import atomic_write_text

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "report.html", "<html></html>")
    assert (tmp_path / "report.html").stat().st_mode == plain.stat().st_mode


def test_hooks_run_in_declared_order_and_a_broken_order_is_refused():
    from frcnn.engine.hooks import (
        Checkpointer,
        EvalSchedule,
        FinalReport,
        Hook,
        ordered_hooks,
    )

    class Mine(Hook):
        pass

    class Early(Hook):
        priority = 5  # before every built-in hook: fine, it depends on none
        runs_after = ()

    built = [FinalReport(), Mine(), Checkpointer(Path("w"), 1), EvalSchedule(), Early()]
    names = [h.name for h in ordered_hooks(built)]
    assert names == ["Early", "EvalSchedule", "Checkpointer", "FinalReport", "Mine"]

    class TooEarly(Hook):
        priority = 45  # before the Checkpointer (60), whose best epoch it reads
        runs_after = ("Checkpointer",)

    with pytest.raises(ValueError, match=r"TooEarly \(priority 45\) must run after Checkpointer"):
        ordered_hooks([Checkpointer(Path("w"), 1), TooEarly()])
