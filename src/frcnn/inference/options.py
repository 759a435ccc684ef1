"""How a detector is composed and run: one typed value whose defaults live here once.

The command line builds it by keyword from its flags, the Python API takes it (or the same
keywords), the trainer builds it from its configuration; :func:`frcnn.inference.compose
.load_detector` turns model files and these options into one detector.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..defaults import (
    BATCH_SIZE,
    CONF,
    ENSEMBLE_IOU,
    ENSEMBLE_METHODS,
    PRECISIONS,
    TILE_OVERLAP,
    TTA_SCALES,
)
from ..errors import InputError, InputTypeError

# What RoIHeads.merge accepts (modeling/roi/roi_heads.py); None keeps the model's own.
MERGE_MODES = ("none", "mean")


@dataclass(frozen=True)
class MergeOptions:
    """How several models (or test-time views) are fused: ``method`` (one of
    ``ENSEMBLE_METHODS``), the IoU that clusters boxes (WBF, NMW, NMS; Gaussian soft-NMS
    needs none), boxes under ``skip_box`` score dropped first (WBF, NMW; soft-NMS's final
    threshold, default 1e-3), ``model_weights`` (one per model; views share their model's)."""

    method: str = "wbf"
    iou: float = ENSEMBLE_IOU
    skip_box: float = 0.0
    model_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.method not in ENSEMBLE_METHODS:
            raise InputError(
                f"ensemble method {self.method!r}: choose one of {', '.join(ENSEMBLE_METHODS)}"
            )
        if not 0 < self.iou < 1:
            raise InputError(f"ensemble IoU must be in (0, 1), got {self.iou}")
        if self.model_weights is not None:
            object.__setattr__(self, "model_weights", tuple(float(w) for w in self.model_weights))


@dataclass(frozen=True)
class InferenceOptions:
    """Everything that says how images become detections.

    Attributes:
        conf: detections scoring below it are not reported by ``predict`` and P/R/F1 and the
            confusion matrix count at it; None: the threshold stored in the model file (the
            one its run was scored at), else :data:`frcnn.defaults.CONF`.
        max_det: most detections kept per image (per tile when tiled); None: the model's.
        tile: predict each image in overlapping tiles of this side (pixels), merged.
        overlap: fraction of a tile shared with its neighbour.
        batch_size: images per forward pass (tiles per pass when tiled).
        precision: ``fp32`` (exact) or ``bf16`` (heavy layers in bfloat16).
        tta: test-time augmentation scales (a flipped copy is added at scale 1); True
            means :data:`frcnn.defaults.TTA_SCALES`; empty or False: none.
        merge: ``mean`` averages each NMS cluster into one box, ``none`` plain NMS; None:
            the model's own setting.
        ensemble: how several models or TTA views are fused.
        calibrated: scores mapped by the calibration stored in the model file.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ...
    """

    conf: float | None = None
    max_det: int | None = None
    tile: int | None = None
    overlap: float = TILE_OVERLAP
    batch_size: int = BATCH_SIZE
    precision: str = "fp32"
    tta: tuple[float, ...] = ()
    merge: str | None = None
    ensemble: MergeOptions = field(default_factory=MergeOptions)
    calibrated: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        tta: Any = self.tta
        scales = TTA_SCALES if tta is True else () if tta in (False, None) else tta
        object.__setattr__(self, "tta", tuple(float(s) for s in scales))
        if self.merge == "none":
            object.__setattr__(self, "merge", "none")
        for problem in self._problems():
            raise InputError(problem)

    def _problems(self) -> list[str]:
        checks = [
            (self.conf is None or 0 <= self.conf <= 1, f"conf must be in [0, 1], got {self.conf}"),
            (
                self.max_det is None or self.max_det >= 1,
                f"max_det must be >= 1, got {self.max_det}",
            ),
            (
                self.tile is None or self.tile >= 32,
                f"tile must be >= 32 pixels (or None for whole images), got {self.tile}",
            ),
            (0 <= self.overlap < 1, f"overlap must be in [0, 1), got {self.overlap}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (
                self.precision in PRECISIONS,
                f"unknown precision {self.precision!r}: choose one of {', '.join(PRECISIONS)}",
            ),
            (all(s > 0 for s in self.tta), f"TTA scales must be > 0, got {list(self.tta)}"),
            (
                self.merge is None or self.merge in MERGE_MODES,
                f"box merge {self.merge!r}: choose {' or '.join(MERGE_MODES)}",
            ),
        ]
        return [message for ok, message in checks if not ok]

    @property
    def images_per_batch(self) -> int:
        """Images per call of the detector: one when tiled (its tiles are batched instead)."""
        return 1 if self.tile else self.batch_size

    def threshold(self, detector: object) -> float:
        """``conf``, else the detector's own threshold (from its model file), else CONF."""
        if self.conf is not None:
            return float(self.conf)
        own = getattr(detector, "conf", None)
        return float(own) if own is not None else CONF

    def replace(self, **changes: Any) -> InferenceOptions:
        """A copy with ``changes`` (field names) applied."""
        return dataclasses.replace(self, **changes)


def take_fields(values: dict[str, Any], base: Any) -> tuple[Any, dict[str, Any]]:
    """``base`` (a frozen options dataclass) with the entries of ``values`` that name one of
    its fields applied, and the entries that do not."""
    if not dataclasses.is_dataclass(base):
        raise InputTypeError(
            f"expected an options value (InferenceOptions, EvalOptions), got "
            f"{type(base).__name__} {base!r}: pass the other arguments by keyword "
            "(split=..., out=..., conf=...)"
        )
    names = {f.name for f in dataclasses.fields(base)}
    ours = {k: v for k, v in values.items() if k in names}
    rest = {k: v for k, v in values.items() if k not in names}
    return dataclasses.replace(base, **ours), rest


def check_keywords(rest: dict[str, Any], function: str, *options: Any) -> None:
    """Refuse keyword arguments that name no field of ``options`` (dataclasses).

    Raises:
        TypeError: naming the unknown keywords and the known ones.
    """
    if rest:
        known = sorted({f.name for o in options for f in dataclasses.fields(o)})
        raise InputTypeError(
            f"{function}() got unknown keyword arguments {sorted(rest)}; options are "
            f"{', '.join(known)}"
        )


def detection_limit(options: InferenceOptions, detector: object) -> int:
    """The most detections per image the evaluation counts: ``max_det``, else the
    detector's own limit."""
    from .detectors import detections_per_img  # torch: imported when first needed

    return options.max_det or detections_per_img(detector)
