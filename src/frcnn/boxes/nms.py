"""Per-class NMS that also exports: torchvision's ``batched_nms``, and while a model is being
exported (``torch.export``, ONNX, or traced for TorchScript) the same coordinate trick written without branches on the
data (an empty input included), so the graph holds for any number of boxes."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms as _torchvision_batched_nms
from torchvision.ops import nms


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Indices of the boxes kept by NMS within each ``idxs`` group, by decreasing score."""
    if not (torch.compiler.is_exporting() or torch.jit.is_tracing()):
        return _torchvision_batched_nms(boxes, scores, idxs, iou_threshold)
    # Shift each group far from the others so that one NMS never mixes them; the zero keeps
    # the maximum defined when there are no boxes.
    top = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
    offsets = idxs.to(boxes) * (top + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
