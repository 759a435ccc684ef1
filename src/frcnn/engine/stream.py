"""Training from a streamed source (``--data hf:NAME[:SPLIT]``): the dataset is never stored.

The training rows stream pass after pass through a shuffle buffer, each rank and DataLoader
worker reading its own rows; an epoch is a fixed number of batches (one pass when the
stream's length is known, else ``schedule.steps`` spread over the epochs), the same on
every rank, and a resume continues the stream after the batches already trained on. The
validation images are read into memory: the first ``data.val_limit`` rows of ``--val`` or,
without ``--val``, of the training stream, whose rows are then never trained on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..config import TrainConfig
from ..data.augment import Augmenter
from ..data.check import DataReport, check_dataset
from ..data.hf import HFRows, HFStreamDataset, StreamOptions, parse_source, stream_rows
from ..data.loader import build_loader
from ..data.records import DetectionDataset
from ..data.sources import is_hub_source, read_dataset
from ..errors import InputError
from .anchors import auto_keys
from .distributed import DistInfo

VAL_ROWS = 500  # validation rows of a streamed source when data.val_limit is not set


def is_streamed(cfg: TrainConfig) -> bool:
    """Whether the run trains from a stream (a Hugging Face source)."""
    return bool(cfg.data.train) and is_hub_source(cfg.data.train, cfg.data.format)


@dataclass
class Streamed:
    """A streamed training source and its validation images.

    Attributes:
        train: the classes, source and split; no images (they stream).
        val: the validation images, in memory.
        held_out: keys of the validation rows taken from the training split (never trained
            on).
        rows: the training split's rows (None: the stream does not say).
        val_rows: the rows read for validation (its first rows), None for a local ``--val``.
    """

    train: DetectionDataset
    val: DetectionDataset
    held_out: frozenset[str] = field(default_factory=frozenset)
    rows: int | None = None
    val_rows: int | None = None

    @property
    def train_rows(self) -> int | None:
        """Rows trained on per pass: the split's, less those held out of it."""
        if self.rows is None:
            return None
        return self.rows - len(self.held_out)


def load_streamed(cfg: TrainConfig) -> tuple[Streamed, DataReport]:
    """The streamed source's classes and the validation images (checked: its report).

    Raises:
        InputError: an option a stream cannot serve, or validation classes that differ.
    """
    d = cfg.data
    _refuse(cfg)
    train_rows = HFRows(d.train)  # the training stream, opened once: its classes
    name, split, names = train_rows.name, train_rows.split, train_rows.names
    rows = stream_rows(name, split)
    if d.val and not is_hub_source(d.val, d.format):
        val, held, val_rows = read_dataset(d.val, d.format, None, d.images, d.exif), None, None
    else:
        source = d.val or d.train
        val_rows = d.val_limit or (
            min(VAL_ROWS, max(1, round(rows * d.val_split))) if rows and not d.val else VAL_ROWS
        )
        same = parse_source(source) == (name, split)  # else no training row can match
        first = (train_rows if same else HFRows(source)).first(val_rows)
        val, held = first.dataset, first.keys if same else None
    val, report = check_dataset(val, "header", d.exif)
    names = names or val.class_names
    if val.class_names != names:
        raise InputError(
            f"validation classes {val.class_names} differ from the classes of {d.train}: {names}"
        )
    train = DetectionDataset(Path("."), names, [], source=d.train, format="hf", split=split)
    return Streamed(train, val, held or frozenset(), rows, val_rows), report


def _refuse(cfg: TrainConfig) -> None:
    """Options that need every training image up front."""
    d, m = cfg.data, cfg.model
    refused = [
        ("data.tile", d.tile, "write it to files first with frcnn data convert, then tile"),
        ("data.repeat_threshold", d.repeat_threshold, "it counts every image's classes"),
        ("data.mosaic", d.mosaic, "it draws any three other images"),
        ("model.class_weights: auto", m.class_weights == "auto", "give the weights"),
        (
            "model.args anchors: auto",
            auto_keys(m.args),
            "fit them with frcnn anchors on a converted part and pass --anchors FILE",
        ),
    ]
    bad = [f"{key} ({why})" for key, value, why in refused if value]
    if bad:
        raise InputError(f"{d.train} is streamed, which cannot serve: {'; '.join(bad)}")


def batches_per_epoch(cfg: TrainConfig, streamed: Streamed, info: DistInfo) -> int:
    """Batches each rank takes per epoch: ``schedule.steps`` spread over the epochs, else
    one pass over the training rows (shared by the ranks)."""
    s, d = cfg.schedule, cfg.data
    if s.steps:
        return max(1, math.ceil(s.steps * cfg.optim.accumulate / s.epochs))
    rows = streamed.train_rows
    if rows is None:
        raise InputError(
            f"{d.train}: the stream does not say how many rows it holds, so an epoch cannot be "
            "one pass over it; give schedule.steps=N (optimiser steps in all, spread over "
            "schedule.epochs)"
        )
    return max(1, rows // (info.world_size * d.batch_size))


class StreamEpochs:
    """Epochs of ``batches`` batches each, taken in turn from one endless loader (its
    workers, shuffle buffer and read-ahead live across epochs); ``position`` counts the
    batches taken, which :meth:`seek` restores on a resume."""

    def __init__(self, make: Callable[[int], DataLoader], batches: int) -> None:
        self.make, self.batches = make, batches
        self.position = 0
        self._batches: Iterator | None = None

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator:
        if self._batches is None:
            self._batches = iter(self.make(self.position))
        for _ in range(self.batches):
            batch = next(self._batches)
            self.position += 1
            yield batch

    def seek(self, position: int) -> None:
        """Continue after ``position`` batches (the loader restarts there)."""
        self.position, self._batches = position, None

    def close(self) -> None:
        """Stop the loader's workers."""
        self._batches = None


def stream_loader(
    cfg: TrainConfig, streamed: Streamed, augmenter: Augmenter, info: DistInfo
) -> StreamEpochs:
    """This rank's training batches from the stream."""
    d = cfg.data

    def make(start: int) -> DataLoader:
        options = StreamOptions(
            split=streamed.train.split,
            buffer=d.stream_buffer,
            seed=cfg.run.seed,
            rank=info.rank,
            world_size=info.world_size,
            held_out=streamed.held_out,
            start_batches=start,
            batch_size=d.batch_size,
            num_classes=len(streamed.train.class_names),
        )
        items = HFStreamDataset(d.train, options, augmenter)
        # its own generator: starting the loader on a resume draws nothing from torch's
        # global one, restored from the checkpoint for the training steps
        seeds = torch.Generator().manual_seed(cfg.run.seed + start)
        return build_loader(items, d.batch_size, d.workers, generator=seeds)

    return StreamEpochs(make, batches_per_epoch(cfg, streamed, info))


def stream_lines(cfg: TrainConfig, streamed: Streamed, val_report: DataReport) -> list[str]:
    """The data summary of a streamed run (logged at set-up and in report.html)."""
    rows = "an unknown number of" if streamed.rows is None else str(streamed.rows)
    where = cfg.data.val or cfg.data.train
    first = "" if streamed.val_rows is None else f" (its first {streamed.val_rows} rows)"
    held = " never trained on" if not cfg.data.val or cfg.data.val == cfg.data.train else ""
    lines = [
        f"training data {cfg.data.train}: streamed, {rows} rows; boxes are checked as they "
        "stream and invalid ones counted per epoch",
        f"validation data {where}{first}{held}:",
    ]
    lines += [f"  {line}" for line in val_report.summary_lines()]
    names = streamed.train.class_names
    lines.append(f"{len(streamed.val)} validation images, {len(names)} classes: {', '.join(names)}")
    return lines
