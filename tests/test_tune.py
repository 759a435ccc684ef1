"""``frcnn tune``: a 2-trial study is interrupted, resumes from SQLite, and writes a
config that trains."""

import csv

import pytest
from test_train import TINY_RUN

from frcnn.cli import main
from frcnn.config import load_config
from frcnn.data.synth import write_synth
from frcnn.engine.hooks import Hook
from frcnn.engine.trainer import train
from frcnn.experiments.tune import read_space, run_tune

SPACE = {
    "optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "eval.conf": {"type": "float", "low": 0.1, "high": 0.9},
}


class _InterruptTrial1(Hook):
    def after_epoch(self, trainer):
        if trainer.out.name == "trial2":
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune")
    write_synth(root, 12, 96, seed=0)
    return root


def test_interrupted_study_resumes_and_its_best_config_trains(data, tmp_path):
    cfg = load_config(None, TINY_RUN, **{"data.train": str(data), "schedule.epochs": 2})
    out = tmp_path / "tune"
    with pytest.raises(KeyboardInterrupt):
        run_tune(cfg, 2, space=SPACE, out=out, callbacks=[_InterruptTrial1()])
    result = run_tune(cfg, 2, space=SPACE, out=out, resume=True)
    assert result.out == out and result.finished == 2
    with (out / "trials.csv").open() as f:
        rows = {int(r["trial"]): r for r in csv.DictReader(f)}
    assert [rows[n]["state"] for n in (1, 2, 3)] == ["complete", "fail", "complete"]
    assert rows[3]["optim.lr"] == rows[2]["optim.lr"]  # the interrupted values, tried again
    assert sorted(p.name for p in out.glob("trial*") if p.is_dir()) == [
        "trial1",
        "trial2",
        "trial3",
    ]
    assert (out / "optimization_history.png").is_file()
    best = load_config(out / "best.yaml")
    assert best.optim.lr == pytest.approx(result.best_params["optim.lr"])
    assert best.eval.conf == pytest.approx(result.best_params["eval.conf"])
    run = train(
        load_config(out / "best.yaml", [], **{"run.out": str(tmp_path / "b"), "schedule.epochs": 1})
    )
    assert run.last.is_file()


def test_search_spaces_are_checked(tmp_path):
    bad = tmp_path / "space.yaml"
    bad.write_text("optim.lr: {type: float, low: 0.001}\n")
    with pytest.raises(ValueError, match="optim.lr: expected"):
        read_space(bad)
    bad.write_text("optim.learning_rate: {type: float, low: 0.001, high: 0.01}\n")
    with pytest.raises(KeyError, match="learning_rate"):
        read_space(bad)
    assert set(read_space(None)) == {"optim.lr", "data.batch_size", "eval.conf"}


def test_cli_tune_one_trial_and_best_yaml_trains_as_the_user_configured(
    data, tmp_path, capsys, monkeypatch
):
    """The search's own settings (its time budget, eval.every=100, the trial folders) stay
    out of best.yaml; the data path, relative where tune ran, is absolute in it."""
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "d").symlink_to(data)
    monkeypatch.chdir(tmp_path / "here")
    args = ["tune", "--data", "d", "--trials", "1", "--epochs", "2", "--out", "t"]
    assert main([*args, "--time-budget", "5", *TINY_RUN, "eval.every=100"]) == 0
    printed = capsys.readouterr().out
    assert "best of 1 finished trials" in printed
    base, best = load_config("t/base.yaml"), load_config("t/best.yaml")
    assert (base.eval.every, base.schedule.time_budget) == (100, 5)
    assert (best.eval.every, best.schedule.time_budget, best.run.out) == (1, None, "runs/train")
    assert best.data.train == str(data.resolve()) and best.schedule.epochs == 2
    monkeypatch.chdir(tmp_path)  # the README's next command, from another folder
    run = train(load_config(tmp_path / "here" / "t" / "best.yaml", [], **{"run.out": "b"}))
    with (run.out / "results.csv").open() as f:
        scores = [r["score"] for r in csv.DictReader(f)]
    assert len(scores) == 2 and all(scores)  # validated every epoch


def test_a_trial_can_be_scored_by_the_wbf_of_its_best_checkpoints(data, tmp_path, frcnn_log):
    cfg = load_config(None, TINY_RUN, **{"data.train": str(data), "schedule.epochs": 2})
    result = run_tune(cfg, 1, space=SPACE, out=tmp_path / "t", ensemble_top=3)
    assert any("WBF of 2 checkpoints scores" in line for line in frcnn_log)
    assert 0 <= result.best_value <= 1


def test_resume_on_a_folder_that_is_not_a_study_is_refused(tmp_path, capsys):
    from frcnn.cli import main

    (tmp_path / "notastudy").mkdir()
    code = main(["tune", "--data", str(tmp_path), "--resume", "--out", str(tmp_path / "notastudy")])
    err = capsys.readouterr().err
    assert code == 2 and "holds no study (no study.db)" in err
    assert list((tmp_path / "notastudy").iterdir()) == []


def test_a_resumed_study_does_not_propose_the_values_already_tried(data, tmp_path):
    cfg = load_config(None, TINY_RUN, **{"data.train": str(data), "schedule.epochs": 1})
    out = tmp_path / "tune"
    run_tune(cfg, 1, space=SPACE, out=out)  # then the process ends (or is killed)
    run_tune(cfg, 2, space=SPACE, out=out, resume=True)
    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and rows[0]["optim.lr"] != rows[1]["optim.lr"]


@pytest.mark.parametrize(
    "entry, says",
    [
        (
            "eval.conf: {type: float, low: 0.1, high: 1.5}",
            "eval.conf: eval.conf must be in [0, 1], got 1.5",
        ),
        ("optim.lr: {type: float, low: 0.01, high: 0.001}", "low 0.01 is above high 0.001"),
        ("optim.lr: {type: float, low: 0, high: 0.1, log: true}", "optim.lr must be > 0, got 0"),
        ("data.batch_size: {type: categorical, choices: [4, 0]}", "must be >= 1, got 0"),
        ("schedule.time_budget: {type: float, low: 1, high: 5}", "cannot be searched"),
        ("data.train: {type: categorical, choices: [a, b]}", "cannot be searched"),
        ("optim.lr: {type: categorical, choices: [[1, 2]]}", "must be a number, got [1, 2]"),
    ],
)
def test_a_space_that_reaches_meaningless_values_names_the_file_and_key(tmp_path, entry, says):
    space = tmp_path / "space.yaml"
    space.write_text(entry + "\n")
    with pytest.raises((ValueError, TypeError)) as err:
        read_space(space)
    assert says in str(err.value) and str(space) in str(err.value)


def _trials(storage, name="frcnn-tune"):
    import optuna

    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def test_a_shared_study_counts_another_workers_running_trial(data, tmp_path):
    """Another worker holds trial 1 (running); asked for 2 trials, this worker runs trial 2,
    then trial 3 would be the third and is marked surplus without training."""
    import optuna

    db = tmp_path / "shared" / "tune.db"
    db.parent.mkdir()
    url = f"sqlite:///{db}"
    optuna.create_study(study_name="s", storage=url, direction="maximize").ask()
    cfg = load_config(None, TINY_RUN, **{"data.train": str(data), "schedule.epochs": 1})
    out = tmp_path / "w1"
    result = run_tune(cfg, 2, space=SPACE, out=out, storage=str(db), study_name="s")
    assert result.finished == 1 and result.where == str(db)
    with (out / "trials.csv").open() as f:
        states = [r["state"] for r in csv.DictReader(f)]
    assert states == ["running", "complete", "surplus"]
    assert sorted(p.name for p in out.glob("trial*") if p.is_dir()) == ["trial2"]
    assert _trials(url, "s")[1].user_attrs["worker"].endswith(f":{__import__('os').getpid()}")
    other = load_config(None, TINY_RUN, **{"data.train": str(data), "schedule.epochs": 2})
    with pytest.raises(ValueError, match="started from another configuration"):
        run_tune(other, 3, space=SPACE, out=out, storage=str(db), study_name="s")


@pytest.mark.slow  # over a minute on 2 cores (an ONNX export or two processes)
def test_two_tune_processes_share_one_journal(data, tmp_path):
    """Two workers started together on one journal file and folder run the study's three
    trials between them, each once, and each worker writes the study's outputs."""
    import subprocess
    import sys

    journal, out = tmp_path / "study.journal", tmp_path / "tune"
    command = [sys.executable, "-m", "frcnn", "tune", "--data", str(data), "--trials", "3"]
    command += ["--epochs", "1", "--storage", str(journal), "--out", str(out), *TINY_RUN]
    workers = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [w.communicate(timeout=600)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], errors
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    trials = _trials(JournalStorage(JournalFileBackend(str(journal))))
    ran = [t for t in trials if not t.user_attrs.get("surplus")]
    assert len(ran) == 3 and {t.state.name for t in ran} <= {"COMPLETE", "PRUNED"}
    assert sorted(p.name for p in out.glob("trial*") if p.is_dir()) == [
        f"trial{t.number + 1}" for t in ran
    ]
    assert load_config(out / "best.yaml").optim.lr in [t.params["optim.lr"] for t in ran]
    print("trials per worker:", sorted(t.user_attrs["worker"] for t in ran))
