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
