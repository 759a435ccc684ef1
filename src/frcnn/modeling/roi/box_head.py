"""The per-RoI head (a two-layer MLP, or convolutions and one fully connected layer) and the
class/box predictor on top of it."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import InputError


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


class ConvFCHead(nn.Module):
    """3x3 conv + BatchNorm + ReLU blocks on the pooled feature, then flatten and one fully
    connected layer with ReLU (torchvision's ``FastRCNNConvFCHead`` of its v2 model: four
    256-channel convs and one 1024-wide layer).

    Args:
        in_channels: channels ``C`` of the pooled features.
        size: their side ``S``.
        conv_channels: output channels of each conv block.
        representation_size: width of the fully connected layer.
    """

    def __init__(
        self,
        in_channels: int,
        size: int,
        conv_channels: tuple[int, ...] = (256, 256, 256, 256),
        representation_size: int = 1024,
    ) -> None:
        super().__init__()
        widths = [in_channels, *conv_channels]
        self.convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(inplace=True)
            )
            for a, b in zip(widths, widths[1:], strict=False)
        )
        self.fc = nn.Linear(widths[-1] * size * size, representation_size)
        for block in self.convs:
            nn.init.kaiming_normal_(block[0].weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """FloatTensor[R, C, S, S] -> FloatTensor[R, representation_size]."""
        for block in self.convs:
            x = block(x)
        return F.relu(self.fc(x.flatten(start_dim=1)))


def build_box_head(kind: str, in_channels: int, size: int, representation_size: int) -> nn.Module:
    """The box head called ``kind`` (one of :data:`BOX_HEADS`) for pooled features of
    ``in_channels`` x ``size`` x ``size``.

    Raises:
        ValueError: an unknown kind.
    """
    if kind == "2mlp":
        return TwoMLPHead(in_channels * size * size, representation_size)
    if kind == "4conv1fc":
        return ConvFCHead(in_channels, size, (256,) * 4, representation_size)
    raise InputError(f"unknown box_head {kind!r}; choose one of {list(BOX_HEADS)}")


# Box heads by name: two fully connected layers (torchvision's v1), or four conv blocks and
# one fully connected layer (its v2).
BOX_HEADS = ("2mlp", "4conv1fc")


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
