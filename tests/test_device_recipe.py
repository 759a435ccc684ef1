import pytest
import torch

import frcnn.engine.device as device_module
import frcnn.engine.trainer as trainer_module
from frcnn.cli import main
from frcnn.config import load_config


@pytest.fixture
def seen(monkeypatch):
    configs = []
    monkeypatch.setattr(trainer_module, "train", lambda cfg: configs.append(cfg) or 1 / 0)
    return configs


def _train(*args):
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "train", "--data", "d", *args])


def test_without_a_choice_the_recipe_follows_the_device(seen, capsys, monkeypatch):
    _train("optim.lr=0.01")
    cpu_fast = load_config("cpu-fast")
    assert seen[-1].model == cpu_fast.model and seen[-1].data.img_size == 256
    assert seen[-1].optim.lr == 0.01  # overrides still apply on top
    assert capsys.readouterr().out.strip().splitlines() == [
        "no GPU: training the cpu-fast recipe (ResNet-18 FPN, 256 px images); --config "
        "tv-default for torchvision's ResNet-50 recipe"
    ]
    _train("--device", "cuda")
    assert seen[-1].model == load_config("tv-default").model
    assert (
        seen[-1].data.batch_size == 2 and "GPU: training the tv-default" in capsys.readouterr().out
    )
    monkeypatch.setattr(device_module, "resolve_device", lambda name: torch.device("cuda"))
    _train()
    assert seen[-1].model.name == "resnet50_fpn" and seen[-1].optim.name == "sgd"


def test_an_explicit_choice_is_never_overridden(seen, capsys, tmp_path):
    default = load_config(None)
    for args in (["--model", "resnet50_fpn"], ["model.name=resnet50_fpn"]):
        _train(*args)
        assert seen[-1].model == default.model and seen[-1].data.img_size == default.data.img_size
    _train("--config", "tv-default")
    assert seen[-1].optim.lr == load_config("tv-default").optim.lr
    assert "training the" not in capsys.readouterr().out
