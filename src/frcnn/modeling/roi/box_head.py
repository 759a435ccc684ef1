"""The per-RoI head: a two-layer MLP and the class/box predictor on top of it."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class TwoMLPHead(nn.Module):
    """Flatten the pooled feature, then two fully connected layers with ReLU.

    Args:
        in_features: ``C * S * S`` of the pooled features.
        representation_size: width of both layers.
    """

    def __init__(self, in_features: int, representation_size: int = 1024) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, representation_size)
        self.fc2 = nn.Linear(representation_size, representation_size)

    def forward(self, x: Tensor) -> Tensor:
        """FloatTensor[R, C, S, S] -> FloatTensor[R, representation_size]."""
        x = x.flatten(start_dim=1)
        return F.relu(self.fc2(F.relu(self.fc1(x))))


class FastRCNNPredictor(nn.Module):
    """Class logits (background = 0) and class-specific box deltas.

    Args:
        in_features: width of the box head's output.
        num_classes: number of classes including background.
    """

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_features, num_classes)
        self.bbox_pred = nn.Linear(in_features, num_classes * 4)
        # Small initial outputs: near-uniform class scores and near-identity box deltas.
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """FloatTensor[R, F] -> logits FloatTensor[R, K] and deltas FloatTensor[R, K*4]."""
        return self.cls_score(x), self.bbox_pred(x)
