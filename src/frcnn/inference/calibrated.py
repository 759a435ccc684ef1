"""A detector whose scores pass through the calibration stored in its model file."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..evaluation.calibration import apply_calibration
from ..modeling.detector import FasterRCNN
from .predict import detections_per_img


class CalibratedDetector(nn.Module):
    """``model(images)`` with each detection's score mapped by ``model.calibration`` (see
    :func:`frcnn.evaluation.calibration.fit_calibration`); boxes, labels and the order of
    the scores are unchanged. The score threshold of ``predict`` then applies to the
    calibrated scores."""

    def __init__(self, model: FasterRCNN) -> None:
        super().__init__()
        if getattr(model, "calibration", None) is None:
            raise ValueError(
                "this model file holds no score calibration: fit one with "
                "`frcnn calibrate --weights W --data VALIDATION_DATA`"
            )
        self.model = model
        self.calibration = model.calibration

    @property
    def class_names(self) -> list[str] | None:
        return self.model.class_names

    @property
    def detections_per_img(self) -> int:
        return detections_per_img(self.model)

    @torch.no_grad()
    def forward(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        out = []
        for det in self.model(images):
            raw = det["scores"].float().cpu().numpy()
            mapped = torch.from_numpy(apply_calibration(self.calibration, raw).astype(np.float32))
            out.append({**det, "scores": mapped.to(det["scores"].device)})
        return out
