"""``frcnn kfold`` end to end on a tiny generated set, and ``frcnn label-issues`` on its
out-of-fold predictions."""

import csv
import json

import pytest
from test_train import TINY_RUN

from frcnn.cli import main
from frcnn.data.synth import write_synth


def test_cli_kfold_writes_folds_summary_oof_and_label_issues(tmp_path, capsys):
    data = tmp_path / "data"
    write_synth(data, 12, 96, seed=0)
    out = tmp_path / "kf"
    args = ["kfold", "--data", str(data), "--folds", "3", "--epochs", "1", "--out", str(out)]
    assert main([*args, *TINY_RUN]) == 0
    printed = capsys.readouterr().out
    assert "mean" in printed and "out-of-fold (all 12 images)" in printed
    with (out / "folds.csv").open() as f:
        folds = list(csv.DictReader(f))
    assert len(folds) == 12 and {r["fold"] for r in folds} == {"1", "2", "3"}
    held = []
    for k in (1, 2, 3):
        val = json.loads((out / "fold_data" / f"fold{k}" / "val.json").read_text())["images"]
        train = json.loads((out / "fold_data" / f"fold{k}" / "train.json").read_text())["images"]
        names = {im["file_name"] for im in val}
        assert names.isdisjoint(im["file_name"] for im in train)
        assert len(names) + len(train) == 12
        held += names
        assert (out / f"fold{k}" / "weights" / "last.safetensors").is_file()
    assert sorted(held) == sorted(r["file_name"] for r in folds)  # each image held out once
    for k in (1, 2, 3):  # each fold's log holds only that fold
        text = (out / f"fold{k}" / "log.txt").read_text()
        assert not any(f"fold {j}/3" in text for j in (1, 2, 3) if j != k)
    assert all(f"fold {k}/3" in (out / "log.txt").read_text() for k in (1, 2, 3))
    with (out / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert [r["fold"] for r in summary] == ["1", "2", "3", "mean", "std", "out-of-fold"]
    assert sum(int(r["images"]) for r in summary[:3]) == 12
    oof = json.loads((out / "oof_predictions.json").read_text())
    ids = {im["id"] for im in oof["images"]}
    assert len(oof["images"]) == 12 and {r["image_id"] for r in oof["annotations"]} <= ids
    assert (out / "oof" / "metrics.json").is_file() and (out / "oof" / "report.html").is_file()
    assert (out / "label_issues" / "label_issues.csv").is_file()
    # The threshold the folds' models were scored at travels with their predictions.
    from frcnn.evaluation.coco import results_conf

    assert oof["conf"] == 0.25 and results_conf(out / "oof_predictions.json", 0.5) == 0.25
    assert results_conf(out / "fold_data" / "fold1" / "val.json", 0.5) == 0.5  # none there

    preds = out / "oof_predictions.json"
    issues_out = tmp_path / "li"
    assert (
        main(
            [
                "label-issues",
                "--data",
                str(data),
                "--predictions",
                str(preds),
                "--out",
                str(issues_out),
                "--conf",
                "0.0",
            ]
        )
        == 0
    )
    assert "likely issues" in capsys.readouterr().out
    with (issues_out / "label_issues.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and (issues_out / "gallery.jpg").is_file()
    ranks = [float(r["rank"]) for r in rows]
    assert ranks == sorted(ranks, reverse=True)


def test_kfold_refuses_a_validation_set_and_too_many_folds(tmp_path, capsys):
    data = tmp_path / "data"
    write_synth(data, 3, 64, seed=0)
    assert main(["kfold", "--data", str(data), "--val", str(data)]) == 2
    assert "leave out --val" in capsys.readouterr().err
    assert main(["kfold", "--data", str(data), "--folds", "4"]) == 2
    assert "4 folds need at least 4 images" in capsys.readouterr().err


@pytest.mark.slow  # four trainings and two process start-ups: about 50 s here
def test_fold_jobs_in_separate_processes_collect_into_one_kfold_run(tmp_path, capsys):
    """``kfold --fold K`` jobs (separate processes) on one folder make the folds one
    ``kfold`` run makes, and the job finishing the last fold writes the same summary."""
    import subprocess
    import sys

    data = tmp_path / "data"
    write_synth(data, 8, 96, seed=0)
    base = ["kfold", "--data", str(data), "--folds", "2", "--epochs", "1", "--no-label-issues"]
    whole, jobs = tmp_path / "whole", tmp_path / "jobs"
    assert main([*base, "--out", str(whole), *TINY_RUN]) == 0
    for k in (2, 1):
        command = [sys.executable, "-m", "frcnn", *base, "--out", str(jobs), "--fold", str(k)]
        done = subprocess.run([*command, *TINY_RUN], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        if k == 2:
            assert "fold 2 of 2 done" in done.stdout and not (jobs / "summary.csv").exists()
    assert (jobs / "folds.csv").read_text() == (whole / "folds.csv").read_text()
    assert (jobs / "summary.csv").read_text() == (whole / "summary.csv").read_text()
    oof = [json.loads((f / "oof_predictions.json").read_text()) for f in (whole, jobs)]
    assert oof[0]["annotations"] == oof[1]["annotations"]
    # other folds in the same folder are refused; --collect rewrites from what is there
    assert main([*base[:4], "3", *base[5:], "--out", str(jobs), "--fold", "1"]) == 2
    assert "assigns other folds" in capsys.readouterr().err
    assert main([*base, "--out", str(jobs), "--collect", *TINY_RUN]) == 0
    assert (jobs / "summary.csv").read_text() == (whole / "summary.csv").read_text()
