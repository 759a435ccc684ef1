"""An exponential moving average of the weights (``optim.ema``), as Ultralytics' ModelEMA.

After the k-th optimiser step every floating-point parameter and buffer ``a`` of the average
becomes ``d * a + (1 - d) * w``, ``w`` the model's, with ``d = decay * (1 - exp(-k / tau))``:
the average follows the weights closely at first and ever more slowly (``tau`` steps set the
warm-up). Runs evaluate, select and save the average; training goes on with the weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    """The moving average of ``model``'s floating-point parameters and buffers.

    Args:
        model: the model trained (its current weights start the average).
        decay: the factor approached after the warm-up.
        tau: optimiser steps of the warm-up (``d`` reaches 63% of ``decay`` after ``tau``).
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0) -> None:
        self.decay, self.tau, self.updates = decay, tau, 0
        self.shadow = {
            k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()
        }

    def factor(self) -> float:
        """``d`` of the latest update."""
        return self.decay * (1.0 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One optimiser step later: the average moves towards ``model``'s weights."""
        self.updates += 1
        d = self.factor()
        state = model.state_dict()
        averaged = list(self.shadow.values())
        torch._foreach_mul_(averaged, d)
        torch._foreach_add_(averaged, [state[k].detach() for k in self.shadow], alpha=1.0 - d)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """``model`` holding the average (evaluate or save it inside), its own weights back
        afterwards."""
        state = model.state_dict()
        weights = [state[k] for k in self.shadow]
        own = [w.detach().clone() for w in weights]
        with torch.no_grad():
            torch._foreach_copy_(weights, list(self.shadow.values()))
        try:
            yield model
        finally:
            with torch.no_grad():
                torch._foreach_copy_(weights, own)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
