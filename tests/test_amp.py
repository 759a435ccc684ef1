"""Mixed precision: ``amp=auto`` picks bf16 only where the device computes it natively."""

import torch
from test_train import TINY_RUN

from frcnn.config import load_config
from frcnn.data.synth import write_synth
from frcnn.engine.device import native_bf16, resolve_amp
from frcnn.engine.trainer import train

CPU = torch.device("cpu")


def test_auto_is_bf16_only_on_cpus_with_native_bf16(monkeypatch):
    for flag in (True, False):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda f=flag: f)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        assert native_bf16(CPU) is flag
        assert resolve_amp(CPU, "auto") == ("bf16" if flag else "none")
    for explicit in ("none", "bf16", "fp16"):
        assert resolve_amp(CPU, explicit) == explicit


def test_emulated_bf16_is_warned_about_and_auto_is_logged(tmp_path, monkeypatch, frcnn_log):
    write_synth(tmp_path / "d", 4, 64, seed=0)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    values = {"data.train": str(tmp_path / "d"), "schedule.epochs": 1, "run.device": "cpu"}
    for amp, expected in (
        ("auto", "mixed precision (amp=auto): none on cpu"),
        ("bf16", "emulated"),
    ):
        values["run.out"] = str(tmp_path / amp)
        train(load_config(None, [*TINY_RUN, f"run.amp={amp}"], **values))
        assert any(expected in line for line in frcnn_log), amp
