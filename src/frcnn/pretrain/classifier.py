"""A registered backbone as an image classifier: its coarsest level, global average pooling,
one linear layer. Only the backbone's weights are kept afterwards."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..modeling.backbones.base import BACKBONES, check_levels


class BackboneClassifier(nn.Module):
    """``logits = fc(mean over space of backbone(x)[-1])``.

    Args:
        backbone: a registered backbone name (``resnet18``, ``cspdarknet53`` ...).
        num_classes: output classes.
        norm: the backbone's normalisation (``bn`` for training from scratch).
        weights: optional starting weights for the backbone (its own state dict).
    """

    def __init__(
        self,
        backbone: str,
        num_classes: int,
        norm: str = "bn",
        weights: dict[str, Tensor] | None = None,
    ) -> None:
        super().__init__()
        spec = BACKBONES.get(backbone)
        self.body = spec.build(
            norm=norm,
            trainable_layers=spec.max_trainable_layers,
            weights=weights,
            checkpointing=False,
        )
        levels = check_levels(self.body.levels, f"backbone {backbone!r}")
        self.fc = nn.Linear(levels[-1].channels, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        """FloatTensor[N, 3, H, W] (normalised) -> logits FloatTensor[N, classes]."""
        return self.fc(torch.flatten(self.body(x)[-1].mean((2, 3)), 1))
