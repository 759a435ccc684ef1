"""A detector whose scores pass through the calibration stored in its model file."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError
from ..evaluation.calibration import apply_calibration
from .detectors import Wrapper


class CalibratedDetector(Wrapper):
    """``inner(images)`` with each detection's score mapped by ``calibration`` (default:
    the one stored in the inner model's file; see
    :func:`frcnn.evaluation.calibration.fit_calibration`); boxes, labels and the order of
    the scores are unchanged. The score threshold of ``predict`` then applies to the
    calibrated scores."""

    def __init__(self, inner: nn.Module, calibration: dict | None = None) -> None:
        super().__init__(inner)
        calibration = calibration or getattr(inner, "calibration", None)
        if calibration is None:
            raise InputError(
                "this model file holds no score calibration: fit one with "
                "`frcnn calibrate --weights W --data VALIDATION_DATA`"
            )
        self.fitted = calibration

    @property
    def calibration(self) -> dict | None:
        return self.fitted

    @torch.no_grad()
    def forward(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        out = []
        for det in self.inner(images):
            raw = det["scores"].float().cpu().numpy()
            # float64: the map keeps the ranking by a tie-break far below float32's
            # resolution, so rounding to float32 would tie scores and change mAP.
            mapped = torch.from_numpy(apply_calibration(self.fitted, raw).astype(np.float64))
            out.append({**det, "scores": mapped.to(det["scores"].device)})
        return out
