"""Decoded images kept in memory for their next use: the tiles of a large image, and the
blocks a large image is split into for validation, each read the same source."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

from .records import ImageRecord


class DecodedImages:
    """Decoded images by key, least recently used evicted beyond ``limit`` bytes: a large
    image is cut into many tiles, and decoding it for each one took most of a tiled
    training step (a 2048 px PNG: ~100 ms per tile)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.images: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self.bytes = 0

    def get(self, key: Hashable) -> np.ndarray | None:
        image = self.images.get(key)
        if image is not None:
            self.images.move_to_end(key)
        return image

    def put(self, key: Hashable, image: np.ndarray) -> np.ndarray:
        """Keep ``image`` when it fits (evicting the least recently used); returns it."""
        if image.nbytes > self.limit:
            return image
        self.images[key] = image
        self.bytes += image.nbytes
        while self.bytes > self.limit:
            self.bytes -= self.images.popitem(last=False)[1].nbytes
        return image


def source_key(rec: ImageRecord, exif: bool) -> Hashable:
    """What a record's pixels are read from: its file (with or without EXIF orientation),
    or its in-memory image; records of blocks of one image share it."""
    return ("memory", id(rec.image)) if rec.image is not None else (str(rec.path), exif)
