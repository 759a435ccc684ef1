"""Experiment trackers: what a run logs reads back through the tracker's own client."""

import json
import sys

import pytest
from test_train import TINY_RUN

from frcnn.cli import main
from frcnn.data.synth import write_synth
from frcnn.engine.hooks.trackers import flat_params, numbers
from frcnn.errors import MissingDependencyError

mlflow = pytest.importorskip("mlflow")


def test_flat_params_and_numbers_by_hand():
    tree = {"data": {"batch_size": 8, "augment": ["a", "b"]}, "model": {"args": {}}, "x": None}
    assert flat_params(tree) == {
        "data.batch_size": "8",
        "data.augment": "['a', 'b']",
        "model.args": "{}",
        "x": "None",
    }
    assert numbers({"a": 1, "b": 0.5, "c": None, "d": "text", "e": True}) == {"a": 1.0, "b": 0.5}


def test_mlflow_run_reads_back_and_a_resume_continues_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    write_synth(tmp_path / "train", 8, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1)
    out = tmp_path / "runs" / "exp"
    args = ["train", "--data", str(tmp_path / "train"), "--val", str(tmp_path / "val")]
    args += ["--epochs", "2", "--out", str(out), *TINY_RUN, "run.loggers=mlflow"]
    assert main([*args, "run.stop_after_epochs=1"]) == 0
    assert main(["train", "--resume", "--out", str(out)]) == 0
    # the default store: a SQLite database beside the run folder, artifacts in mlruns/
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("frcnn")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "exp" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["data.batch_size"] == "4" and params["schedule.epochs"] == "2"
    assert params["model.args.fpn_channels"] == "16"
    # one value per epoch, at step = epoch, for the losses, lr and metrics of results.csv
    history = client.get_metric_history(run.info.run_id, "loss_classifier")
    assert [m.step for m in history] == [1, 2]
    rows = (out / "results.csv").read_text().splitlines()[1:]
    column = (out / "results.csv").read_text().splitlines()[0].split(",").index("mAP50")
    expected = [float(r.split(",")[column]) for r in rows]
    mAP50 = client.get_metric_history(run.info.run_id, "mAP50")
    assert [m.value for m in mAP50] == pytest.approx(expected)
    assert "lr" in run.data.metrics and "val_loss_classifier" in run.data.metrics
    assert "final/AP50" in run.data.metrics
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "results.csv", "metrics.json", "config.yaml", "weights"} <= names
    weights = {a.path for a in client.list_artifacts(run.info.run_id, "weights")}
    assert weights == {"weights/best.safetensors"}
    assert (tmp_path / "runs" / "mlruns").is_dir()


def test_mlflow_follows_the_tracking_uri_and_unknown_loggers_are_refused(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "mine")
    monkeypatch.chdir(tmp_path)  # MLflow puts the artifacts of a store it is given in ./mlruns
    write_synth(tmp_path / "train", 4, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1)
    args = ["train", "--data", str(tmp_path / "train"), "--val", str(tmp_path / "val")]
    args += ["--epochs", "1", "--out", str(tmp_path / "run"), *TINY_RUN]
    assert main([*args, "run.loggers=[mlflow]"]) == 0
    client = mlflow.tracking.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("mine").experiment_id])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "mAP")] == [1]
    assert not (tmp_path / "mlflow.db").exists()
    assert main([*args, "run.loggers=[tensorboard,comet]"]) != 0


def test_mlflow_missing_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now fails
    monkeypatch.setenv("FRCNN_DEBUG", "1")  # the error raised, not only printed
    write_synth(tmp_path / "train", 4, 96, seed=0)
    args = ["train", "--data", str(tmp_path / "train"), "--val", str(tmp_path / "train")]
    args += ["--epochs", "1", "--out", str(tmp_path / "run"), *TINY_RUN, "run.loggers=mlflow"]
    with pytest.raises(MissingDependencyError, match=r"pip install 'frcnn\[mlflow\]'"):
        main(args)


def wandb_records(path):
    """The records of a W&B run file (``run-<id>.wandb``): LevelDB's log format (32 KiB
    blocks of records, each a 7-byte header: CRC, length, type 1 full / 2 first / 3 middle /
    4 last) after W&B's 7-byte header, each record a ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the rest of a block is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def test_wandb_offline_run_holds_every_epoch_and_a_resume_keeps_its_id(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for key, value in {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_CONSOLE": "off",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    write_synth(tmp_path / "train", 8, 96, seed=0)
    write_synth(tmp_path / "val", 2, 96, seed=1)
    out = tmp_path / "exp"
    args = ["train", "--data", str(tmp_path / "train"), "--val", str(tmp_path / "val")]
    args += ["--epochs", "2", "--out", str(out), *TINY_RUN, "run.loggers=wandb"]
    assert main([*args, "run.stop_after_epochs=1"]) == 0
    assert main(["train", "--resume", "--out", str(out)]) == 0
    files = sorted((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2 and len({f.name for f in files}) == 1  # one run id, resumed
    history, config, artifacts = [], {}, []
    for f in files:
        for r in wandb_records(f):
            kind = r.WhichOneof("record_type")
            if kind == "history":
                items = {i.key or "/".join(i.nested_key): i.value_json for i in r.history.item}
                history.append({k: json.loads(v) for k, v in items.items()})
            elif kind == "config":
                config.update(
                    {
                        i.key or "/".join(i.nested_key): json.loads(i.value_json)
                        for i in r.config.update
                    }
                )
            elif kind == "artifact":
                artifacts.append({m.path for m in r.artifact.manifest.contents})
    epochs = [h for h in history if "loss_classifier" in h]
    assert [h["_step"] for h in epochs] == [1, 2] and all("mAP50" in h for h in epochs)
    assert any("final/AP50" in h for h in history)
    assert config["data.batch_size"] == "4" and config["schedule.epochs"] == "2"
    assert {"report.html", "results.csv", "weights/best.safetensors"} <= artifacts[-1]


def test_runs_of_one_group_nest_under_one_parent_run(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    write_synth(tmp_path / "data", 4, 96, seed=0)
    args = ["train", "--data", str(tmp_path / "data"), "--val", str(tmp_path / "data")]
    for name in ("a", "b"):
        out = ["--epochs", "1", "--out", str(tmp_path / "runs" / name)]
        assert main([*args, *out, *TINY_RUN, "run.loggers=mlflow", "run.group=study"]) == 0
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("frcnn").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("frcnn.group_parent") == "study"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["a", "b"] and len(runs) == 3
    assert parent.info.run_name == "study" and parent.info.status == "FINISHED"


@pytest.mark.slow
def test_kfold_folds_are_mlflow_runs_nested_under_one_parent(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    write_synth(tmp_path / "data", 8, 96, seed=0)
    out = tmp_path / "kf"
    args = ["kfold", "--data", str(tmp_path / "data"), "--folds", "2", "--epochs", "1"]
    assert main([*args, "--out", str(out), *TINY_RUN, "run.loggers=mlflow"]) == 0
    client = mlflow.tracking.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("frcnn").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("frcnn.group_parent") == "kf"]
    folds = sorted(r.info.run_name for r in runs if r.info.run_id != parent.info.run_id)
    assert folds == ["fold1", "fold2"] and parent.info.run_name == "kf"
    assert parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 2 and all(r.data.params["run.group"] == "kf" for r in children)
