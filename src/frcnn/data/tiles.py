"""A tiled view of a dataset: large images cut into overlapping crops for training."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter

import numpy as np

from ..boxes.overlap import boxes_in_window
from ..defaults import TILE_CACHE_MB, TILE_OVERLAP
from ..errors import InputError
from .augment import Augmenter
from .decoded import DecodedImages
from .loader import DetectionTorchDataset, record_pixels
from .mosaic import Part
from .records import DetectionDataset, ImageRecord

log = logging.getLogger("frcnn")


def tile_windows(width: int, height: int, tile: int, overlap: float) -> np.ndarray:
    """Windows [T, 4] (x1, y1, x2, y2) of side ``tile`` covering the image, neighbours
    overlapping by ``overlap`` of a tile; the last row/column is aligned to the image edge.
    An image smaller than a tile is one window of its own size."""
    if not 0 <= overlap < 1:
        raise InputError(f"overlap must be in [0, 1), got {overlap}")

    def starts(length: int) -> np.ndarray:
        if length <= tile:
            return np.array([0])
        step = max(1, int(round(tile * (1 - overlap))))
        s = np.arange(0, length - tile, step)
        return np.unique(np.append(s, length - tile))

    xs, ys = starts(width), starts(height)
    x1, y1 = np.meshgrid(xs, ys)
    x1, y1 = x1.reshape(-1), y1.reshape(-1)
    return np.stack(
        [x1, y1, np.minimum(x1 + tile, width), np.minimum(y1 + tile, height)], 1
    ).astype(np.float32)


class TiledDataset(DetectionTorchDataset):
    """Every image cut into ``tile`` x ``tile`` crops with ``overlap``; each crop is an item.

    A box cut by a tile edge is kept (clipped) in that tile when at least ``min_visibility``
    of it is visible there, otherwise dropped from that tile. ``report`` counts the boxes
    clipped and dropped per tile, and ``boxes_lost``: boxes visible enough in no tile at all.

    Args:
        ds: checked records (image sizes known).
        tile: tile side in pixels.
        overlap: fraction of a tile shared by neighbours.
        min_visibility: smallest visible fraction for a cut box to be kept.
        augment: applied to each tile after cropping.
        cache_mb: decoded images kept for their other tiles (least recently used first
            out), in MB per process; 0 decodes the image for every tile.
        decoded: a cache to share with other datasets over the same images (then
            ``cache_mb`` is not used).
    """

    def __init__(
        self,
        ds: DetectionDataset,
        tile: int,
        overlap: float = TILE_OVERLAP,
        min_visibility: float = 0.5,
        augment: Augmenter | None = None,
        exif: bool = True,
        cache_mb: int = TILE_CACHE_MB,
        decoded: DecodedImages | None = None,
    ) -> None:
        super().__init__(ds, augment, None, exif, decoded or DecodedImages(cache_mb * 2**20))
        self.tile = tile
        self.min_visibility = min_visibility
        self.items: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self.report: Counter = Counter()
        for index, rec in enumerate(ds.images):
            seen = np.zeros(rec.num_boxes, bool)
            for window in tile_windows(rec.width, rec.height, tile, overlap):
                boxes, keep = boxes_in_window(rec.boxes, window, min_visibility)
                whole = (
                    keep
                    & (rec.boxes[:, :2] >= window[:2]).all(1)
                    & (rec.boxes[:, 2:] <= window[2:]).all(1)
                )
                cut = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # overlaps the tile
                self.report["tiles"] += 1
                self.report["boxes_clipped"] += int((keep & ~whole).sum())
                self.report["boxes_dropped"] += int((cut & ~keep).sum())
                seen |= keep
                self.items.append((index, window, boxes, keep))
            self.report["boxes_lost"] += int((~seen).sum())

    def __len__(self) -> int:
        return len(self.items)

    def part(self, index: int) -> tuple[Part, int]:
        """Tile ``index`` before augmentation (its image decoded, the window cut out)."""
        image_index, window, boxes, keep = self.items[index]
        rec = self.ds.images[image_index]
        image = record_pixels(rec, self.exif, self.decoded)
        x1, y1, x2, y2 = window.astype(int).tolist()
        crop = np.array(image[y1:y2, x1:x2])  # a copy: the decoded image is kept
        ignore = (rec.iscrowd | rec.ignore)[keep]
        return (crop, boxes[keep], rec.labels[keep], ignore), rec.image_id


def crop_record(
    rec: ImageRecord, window: np.ndarray, min_visibility: float, image_id: int
) -> tuple[ImageRecord, int]:
    """The part of ``rec`` inside ``window`` (x1, y1, x2, y2 in ``rec``'s pixels) as a record
    of its own, and how many boxes overlapping the window were dropped there.

    Boxes are clipped to the window and kept when at least ``min_visibility`` of their area is
    inside it (as for tiles)."""
    boxes, keep = boxes_in_window(rec.boxes, window.astype(np.float32), min_visibility)
    overlapping = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    x1, y1, x2, y2 = (int(v) for v in window)
    ox, oy = (rec.window[0], rec.window[1]) if rec.window else (0, 0)
    crop = dataclasses.replace(
        rec.subset(keep),
        file_name=f"{rec.file_name}@{ox + x1},{oy + y1}",
        width=x2 - x1,
        height=y2 - y1,
        boxes=boxes[keep],
        image_id=image_id,
        window=(ox + x1, oy + y1, ox + x2, oy + y2),
    )
    return crop, int((overlapping & ~keep).sum())


def tile_records(
    ds: DetectionDataset, tile: int, overlap: float, min_visibility: float
) -> DetectionDataset:
    """Every tile of every image as a record of its own (what tiled training sees): boxes
    clipped to their tile and kept when ``min_visibility`` of them is inside it."""
    records, next_id = [], max((r.image_id for r in ds.images), default=0) + 1
    for rec in ds.images:
        for window in tile_windows(rec.width, rec.height, tile, overlap):
            records.append(crop_record(rec, window, min_visibility, next_id)[0])
            next_id += 1
    return DetectionDataset(
        ds.root, ds.class_names, records, source=ds.source, format=ds.format, split=ds.split
    )


def block_windows(width: int, height: int, block: int) -> np.ndarray:
    """Disjoint windows [B, 4] of about ``block`` pixels a side that tile the image exactly."""
    xs = np.linspace(0, width, max(1, round(width / block)) + 1).round()
    ys = np.linspace(0, height, max(1, round(height / block)) + 1).round()
    x1, y1 = np.meshgrid(xs[:-1], ys[:-1])
    x2, y2 = np.meshgrid(xs[1:], ys[1:])
    return np.stack([x1.ravel(), y1.ravel(), x2.ravel(), y2.ravel()], 1).astype(np.float32)


def split_blocks(
    ds: DetectionDataset,
    tile: int,
    val_fraction: float,
    min_visibility: float,
    seed: int = 0,
) -> tuple[DetectionDataset, DetectionDataset, Counter]:
    """A spatial train/validation split for tiled training: every image is cut into disjoint
    blocks (two tiles a side, or one when that gives too few) and ``val_fraction`` of the
    blocks are held out for validation, where each is predicted in tiles and scored whole.
    No validation block overlaps a training block, so even a single large image gives an
    honest validation.

    Returns:
        training blocks (to be tiled), validation blocks, and counts (``blocks``,
        ``val_blocks``, ``boxes_cut``: boxes dropped because a block edge hid too much of them).

    Raises:
        ValueError: the images are too small to give a training and a validation block.
    """
    for side in (2 * tile, tile):
        blocks = [
            (i, w) for i, r in enumerate(ds.images) for w in block_windows(r.width, r.height, side)
        ]
        if len(blocks) >= 2:
            break
    else:
        raise InputError(
            f"the images are too small to split into training and validation blocks of "
            f"{tile} px tiles; pass validation data with --val DATA or a smaller --tile"
        )
    order = np.random.default_rng(seed).permutation(len(blocks))
    n_val = min(len(blocks) - 1, max(1, int(round(len(blocks) * val_fraction))))
    is_val = np.zeros(len(blocks), bool)
    is_val[order[:n_val]] = True
    report = Counter(blocks=len(blocks), val_blocks=n_val)
    next_id = max((r.image_id for r in ds.images), default=0) + 1
    train_recs, val_recs = [], []
    for (index, window), held_out in zip(blocks, is_val.tolist(), strict=True):
        rec, cut = crop_record(ds.images[index], window, min_visibility, next_id)
        next_id += 1
        report["boxes_cut"] += cut
        (val_recs if held_out else train_recs).append(rec)
    meta = dict(source=ds.source, format=ds.format)
    return (
        DetectionDataset(ds.root, ds.class_names, train_recs, split="train", **meta),
        DetectionDataset(ds.root, ds.class_names, val_recs, split="val", **meta),
        report,
    )
