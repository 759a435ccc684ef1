"""Box-aware augmentation pipelines (Albumentations), by name or from a config list."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check at import
import albumentations as A  # noqa: E402

PIPELINES = ("none", "light", "default", "heavy", "aerial", "scan")


def _named(name: str) -> list[A.BasicTransform]:
    if name == "none":
        return []
    if name == "light":
        return [A.HorizontalFlip(p=0.5), A.RandomBrightnessContrast(p=0.5)]
    if name == "default":
        # Geometric and noise augmentation: random scale (boxes scaled with the image), rotation that
        # rotates the boxes, and Gaussian noise.
        return [
            A.HorizontalFlip(p=0.5),
            A.RandomBrightnessContrast(p=0.5),
            A.Affine(scale=(0.75, 1.25), rotate=(-10, 10), translate_percent=(-0.05, 0.05), p=0.5),
            A.GaussNoise(std_range=(0.02, 0.08), p=0.3),
        ]
    if name == "heavy":
        return [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.1),
            A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
            A.HueSaturationValue(p=0.3),
            A.Affine(
                scale=(0.5, 1.5),
                rotate=(-20, 20),
                translate_percent=(-0.1, 0.1),
                shear=(-5, 5),
                p=0.7,
            ),
            A.OneOf([A.GaussianBlur(blur_limit=(3, 5)), A.MotionBlur(blur_limit=(3, 7))], p=0.2),
            A.GaussNoise(std_range=(0.02, 0.12), p=0.4),
        ]
    if name == "aerial":
        # Images without an up (aerial, satellite, microscopy): every 90-degree rotation and
        # both flips are free data; mild scale and colour jitter.
        return [
            A.RandomRotate90(p=1.0),
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.Affine(scale=(0.8, 1.25), p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
            A.HueSaturationValue(10, 15, 10, p=0.3),
        ]
    if name == "scan":
        # Documents, X-rays, grayscale scans: intensity and noise that keep gray gray (no
        # hue), both flips; the geometry otherwise untouched.
        return [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.6),
            A.RandomGamma(gamma_limit=(80, 120), p=0.3),
            A.GaussNoise(std_range=(0.02, 0.06), per_channel=False, p=0.3),
        ]
    raise InputError(f"unknown augmentation {name!r}; choose one of {PIPELINES} or give a list")


def _from_spec(spec: str | dict[str, Any]) -> A.BasicTransform:
    if isinstance(spec, str):
        spec = {"name": spec}
    spec = dict(spec)
    name = spec.pop("name", None)
    cls = getattr(A, str(name), None)
    if not isinstance(cls, type) or not issubclass(cls, A.BasicTransform):
        raise InputError(f"augmentation {name!r} is not an Albumentations transform")
    return cls(**spec)


def _seed_each(transforms: Sequence[Any], seeds: np.random.SeedSequence) -> None:
    """A distinct seed for every transform (and, inside ``OneOf`` and the like, for the
    choice and for each alternative)."""
    for transform, child in zip(transforms, seeds.spawn(len(transforms)), strict=True):
        transform.set_random_seed(int(child.generate_state(1)[0]))
        inner = getattr(transform, "transforms", None)
        if inner:
            _seed_each(inner, child)


class Augmenter:
    """Applies an Albumentations pipeline to an image and its boxes.

    Boxes that leave the image, or keep less than ``min_visibility`` of their area or less
    than ``min_area`` pixels, are dropped; the caller gets how many.

    Args:
        pipeline: a name from :data:`PIPELINES`, or a list of transforms given as names or
            ``{"name": "Affine", "rotate": [-5, 5], "p": 0.5}`` dicts.
        min_visibility: smallest kept fraction of a box's area.
        min_area: smallest kept box area in pixels.
        seed: seeds the pipeline's random draws (see :meth:`set_epoch`); None draws a seed.
    """

    def __init__(
        self,
        pipeline: str | Sequence[str | dict[str, Any]] = "default",
        min_visibility: float = 0.3,
        min_area: float = 4.0,
        seed: int | None = None,
    ) -> None:
        self.seed = seed
        self.epoch = self.part = 0
        transforms = (
            _named(pipeline) if isinstance(pipeline, str) else [_from_spec(s) for s in pipeline]
        )
        self.enabled = bool(transforms)
        self.compose = None
        if not self.enabled:
            return
        self.compose = A.Compose(
            transforms,
            bbox_params=A.BboxParams(
                format="pascal_voc",
                label_fields=["index"],
                min_visibility=min_visibility,
                min_area=min_area,
                clip=True,
            ),
            seed=seed,
        )
        if seed is not None:
            self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Re-seed for an epoch, so a resumed run draws the same augmentations. Each
        transform gets a seed of its own: Albumentations seeds every transform of a pipeline
        with the pipeline's seed, and transforms drawing the same numbers fire together (a
        flip always with the brightness change, both flips at once)."""
        self.epoch = epoch
        self._reseed()

    def set_part(self, part: int) -> None:
        """Draw the sequence of one part of the data (a rank, a DataLoader worker): each
        process holds a copy of the augmenter, and equal copies would give the images of
        every rank and worker the same augmentations. Part 0 draws what a single process
        draws."""
        self.part = part
        self._reseed()

    def _reseed(self) -> None:
        if self.compose is None or self.seed is None:
            return
        key = [self.seed, self.epoch] + ([self.part] if self.part else [])
        self.compose.set_random_seed(self.seed + self.epoch + 1_000_003 * self.part)
        _seed_each(self.compose.transforms, np.random.SeedSequence(key))

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(image, boxes, kept)``: the new image, its boxes float32 [M, 4] and the indices
        of the input boxes they came from (dropped ones are missing)."""
        if not self.enabled:
            return image, boxes, np.arange(len(boxes))
        out = self.compose(image=image, bboxes=boxes, index=np.arange(len(boxes)))
        kept = np.asarray(out["index"], np.int64).reshape(-1)
        return out["image"], np.asarray(out["bboxes"], np.float32).reshape(-1, 4), kept
