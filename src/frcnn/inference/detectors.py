"""Detectors: a model, and the wrappers that compose behaviour around it.

A detector maps a list of CHW float images (0..1) to one dict per image with ``boxes``
FloatTensor[D, 4] (xyxy pixels of that original image), ``scores`` FloatTensor[D] and
``labels`` Int64Tensor[D], best first. It also says ``class_names``, ``conf`` (the score
threshold stored with the model, or None), ``calibration`` and ``detections_per_img``.

- :class:`ModelDetector`: a built :class:`~frcnn.modeling.detector.FasterRCNN`; images are
  batched only with images that pad to the same input size, so a prediction never depends
  on its batch neighbours.
- :class:`TiledDetector`: each image cut into overlapping tiles, the tiles' detections merged.
- :class:`~frcnn.inference.calibrated.CalibratedDetector`: scores mapped by a calibration.
- :class:`~frcnn.inference.ensemble.MergedDetector`: several models and views fused.

Nothing here changes a model's modules: what a model does is its configuration.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..defaults import BATCH_SIZE, TILE_OVERLAP
from ..engine.distributed import DistInfo
from ..modeling.detector import FasterRCNN
from .tiling import predict_tiled


def same_size_groups(model: FasterRCNN, images: Sequence[Tensor]) -> list[list[int]]:
    """Indices of ``images`` grouped by the input size each pads to alone, in first-seen
    order: a group batches without any image padded beyond its own size."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        key = model.transform.padded_size(int(image.shape[-2]), int(image.shape[-1]))
        groups.setdefault(key, []).append(i)
    return list(groups.values())


@torch.no_grad()
def grouped_forward(model: FasterRCNN, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
    """``model(images)`` in eval mode, each group of :func:`same_size_groups` a batch of its
    own, outputs in input order."""
    out: list[dict[str, Tensor] | None] = [None] * len(images)
    for group in same_size_groups(model, images):
        for i, det in zip(group, model([images[i] for i in group]), strict=True):
            out[i] = det
    return out  # type: ignore[return-value]


def model_device(detector: object) -> torch.device:
    """Where a detector's weights are: the CPU for one without PyTorch parameters (an
    exported model run by ONNX Runtime)."""
    parameters = getattr(detector, "parameters", None)
    first = next(parameters(), None) if parameters is not None else None
    return first.device if first is not None else torch.device("cpu")


def detections_per_img(detector: object) -> int:
    """The most detections per image a detector returns: a FasterRCNN's box head's limit;
    wrappers (ensembles, calibrated or exported models) say it themselves."""
    return getattr(detector, "roi_heads", detector).detections_per_img


class Wrapper(nn.Module):
    """A detector around another (``inner``); says what ``inner`` says."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    @property
    def class_names(self) -> list[str] | None:
        return self.inner.class_names

    @property
    def conf(self) -> float | None:
        return getattr(self.inner, "conf", None)

    @property
    def calibration(self) -> dict | None:
        return getattr(self.inner, "calibration", None)

    @property
    def detections_per_img(self) -> int:
        return detections_per_img(self.inner)


class ModelDetector(Wrapper):
    """A FasterRCNN as a detector: images moved to its device, batched by padded size
    (:func:`grouped_forward`), in eval mode."""

    def __init__(self, model: FasterRCNN) -> None:
        super().__init__(model.eval())

    @property
    def model(self) -> FasterRCNN:
        return self.inner

    @torch.no_grad()
    def forward(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        device = model_device(self.inner)
        self.inner.eval()
        return grouped_forward(self.inner, [im.to(device) for im in images])


class TiledDetector(Wrapper):
    """``inner`` run on overlapping ``tile`` x ``tile`` crops of each image (``batch_size``
    crops per call), the detections merged across seams (:func:`~frcnn.inference.tiling
    .merge_tiles`) in the whole image's pixels. ``detections_per_img`` is per tile. With
    ``ranks`` every rank of a torchrun job runs its share of each image's tiles (every rank
    calls with the same images) and all get the merged detections."""

    def __init__(
        self,
        inner: nn.Module,
        tile: int,
        overlap: float = TILE_OVERLAP,
        batch_size: int = BATCH_SIZE,
        ranks: DistInfo | None = None,
    ) -> None:
        super().__init__(inner)
        self.tile, self.overlap, self.batch_size = int(tile), float(overlap), int(batch_size)
        self.ranks = ranks  # a torchrun job's ranks share each image's tiles

    @torch.no_grad()
    def forward(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        return [
            predict_tiled(
                self.inner, im, self.tile, self.overlap, self.batch_size, ranks=self.ranks
            )
            for im in images
        ]


class RelabelledDetector(Wrapper):
    """``inner``'s detections in another set of classes: ``lookup[label]`` is each model
    class's index among ``class_names`` (1-based), or -1 for a class left out, whose
    detections are dropped (a COCO model scored on data of a few COCO classes)."""

    def __init__(self, inner: nn.Module, lookup: Tensor, class_names: Sequence[str]) -> None:
        super().__init__(inner)
        self.register_buffer("lookup", lookup.long(), persistent=False)
        self.names = list(class_names)

    @property
    def class_names(self) -> list[str]:
        return self.names

    @torch.no_grad()
    def forward(self, images: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        out = []
        for det in self.inner(images):
            labels = self.lookup.to(det["labels"].device)[det["labels"]]
            keep = labels >= 0
            out.append({**{k: v[keep] for k, v in det.items()}, "labels": labels[keep]})
        return out
