import pytest
import torch

import frcnn
from frcnn.demo import DEMO_MODEL

# The demo's small configuration keeps CPU tests fast; every stage is still exercised.
TINY = DEMO_MODEL


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return frcnn.build_model("resnet18_fpn", 3, **TINY)


@pytest.fixture
def frcnn_log():
    """Messages (INFO and up) of the ``frcnn`` logger during the test, whatever its
    propagation (a run's set-up stops it propagating to pytest's capture)."""
    import logging

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("frcnn")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)
    logger.setLevel(level)
