"""One table of checks: the same meaningless values refused by every command, naming the
option as the user gave it, before any work."""

import pytest

from frcnn.checks import RULES, check_value
from frcnn.cli import main
from frcnn.config import load_config


@pytest.mark.parametrize(
    "argv, says",
    [
        (
            ["predict", "--weights", "w", "a.png", "--conf", "1.5"],
            "--conf must be in [0, 1], got 1.5",
        ),
        (["predict", "--weights", "w", "a.png", "--max-det", "0"], "--max-det must be >= 1, got 0"),
        (["predict", "--weights", "w", "a.png", "--tile", "0"], "--tile must be >= 32 pixels"),
        (["predict", "--weights", "w", "a.png", "--overlap", "1"], "--overlap must be in [0, 0.9]"),
        (["eval", "--weights", "w", "--data", "d", "--conf", "-0.1"], "--conf must be in [0, 1]"),
        (["benchmark", "--weights", "w", "--images", "0"], "--images must be >= 1, got 0"),
        (["kfold", "--data", "d", "--folds", "1"], "--folds must be >= 2, got 1"),
        (["tune", "--data", "d", "--trials", "0"], "--trials must be >= 1, got 0"),
        (
            ["label-issues", "--data", "d", "--predictions", "p", "--top", "-1"],
            "--top must be >= 0",
        ),
        (["data", "synth", "out", "--n", "0"], "--n must be >= 1, got 0"),
        (["train", "--data", "d", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (
            ["train", "--data", "d", "--time-budget", "-1"],
            "--time-budget must be > 0 minutes, got -1.0",
        ),
        (["train", "--data", "d", "optim.lr=[1,2]"], "optim.lr must be a number, got [1, 2]"),
        (["train", "--data", "d", "eval.conf=2"], "eval.conf must be in [0, 1], got 2"),
        (
            ["train", "--data", "d", "model.args.fpn_channels=abc"],
            "fpn_channels='abc' is not valid",
        ),
        (["train", "--data", "d", "data.img_sizes=[[1]]"], "data.img_sizes must be a list of"),
        (["predict", "--weights", "w", "a.png", "--tile", "64", "--overlap", "0.99"], "--overlap"),
        (["data", "synth", "o", "--objects", "5", "1"], "--objects MIN MAX: need 0 <= MIN <= MAX"),
        (["data", "synth", "o", "--object-size", "50", "10"], "--object-size MIN MAX"),
    ],
)
def test_every_command_refuses_what_cannot_mean_anything(argv, says, capsys, tmp_path):
    assert main([*argv]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1  # one line, before any work


def test_config_keys_and_options_share_their_rules():
    for key, bad in [("schedule.epochs", 0), ("data.overlap", 1.0), ("optim.momentum", -0.1)]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            load_config(None, [f"{key}={bad}"])
        with pytest.raises(ValueError):
            check_value(key.split(".")[-1], bad)
    with pytest.raises(TypeError, match="must be an integer, got 'many'"):
        check_value("epochs", "many")
    with pytest.raises(ValueError, match="must be an integer >= 1, got 1.5"):
        check_value("schedule.epochs", 1.5)
    assert RULES["conf"] is RULES["iou"]  # one rule object per kind of value
    load_config(None, [])  # the defaults pass every check
