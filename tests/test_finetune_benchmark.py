"""benchmarks/finetune.py on one seed: fine-tuning from trained weights beats the same model
trained from random weights for the same minutes on a small set of other classes."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "finetune.py"


@pytest.mark.slow
def test_fine_tuning_beats_training_from_scratch(tmp_path):
    args = ["--pretrain-minutes", "3", "--minutes", "2", "--seeds", "0", "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=True
    )
    found = re.search(r"seed 0: fine-tuned mAP50 ([\d.]+)  from scratch ([\d.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    tuned, scratch = map(float, found.groups())
    assert tuned > scratch, done.stdout
