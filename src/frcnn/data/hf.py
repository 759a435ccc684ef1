"""Hugging Face datasets in the schema of ``detection-datasets/coco``, streamed.

Each row has an ``image`` and ``objects`` with ``bbox`` (``[x, y, width, height]`` pixels by
default) and ``category`` (0-based, ideally a ``ClassLabel`` carrying the names). NAME is a hub
id or a local folder of parquet/arrow files. Rows are read with the images undecoded and
decoded here, so a damaged image is one counted, skipped row, not a failed run. Needs the
optional ``datasets`` package (``pip install frcnn[hf]``).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset

from ..errors import InputError, SetupError, UnreadableImageError, require
from .problems import ProblemLog
from .records import DetectionDataset, ImageRecord

log = logging.getLogger("frcnn")

ROWS_PER_READ = 16  # rows fetched from the stream at a time


def parse_source(source: str) -> tuple[str, str]:
    """``hf:NAME[:SPLIT]`` -> ``(NAME, SPLIT)``; NAME may be a hub id or a local folder."""
    body = source.removeprefix("hf:")
    name, _, split = body.partition(":")
    if not name:
        raise InputError(f"{source!r}: expected hf:NAME[:SPLIT]")
    return name, split or "train"


def open_stream(name: str, split: str):
    datasets: Any = require("datasets", "hf", "reading hf: sources")
    try:
        return datasets.load_dataset(name, split=split, streaming=True)
    except (ConnectionError, OSError) as err:
        raise SetupError(
            f"could not open Hugging Face dataset {name!r} split {split!r}: {err}. It streams "
            "from the hub, which needs internet access (or pass a local folder as NAME)."
        ) from err
    except ValueError as err:  # an unknown split
        raise InputError(f"Hugging Face dataset {name!r}: {err}") from err


def class_names(stream) -> list[str] | None:
    """Names from the ``objects.category`` ClassLabel, when the features carry them."""
    features = getattr(stream, "features", None)
    if not features or "objects" not in features:
        return None
    objects = features["objects"]
    category = (
        objects["category"]
        if isinstance(objects, dict)
        else getattr(objects, "feature", {}).get("category")
    )
    label = getattr(category, "feature", category)
    names = getattr(label, "names", None)
    return list(names) if names else None


def stream_rows(name: str, split: str) -> int | None:
    """The rows of a split without reading them: the dataset card's count, or the parquet
    footers of a local folder; None when neither says."""
    datasets: Any = require("datasets", "hf", "reading hf: sources")
    try:
        builder = datasets.load_dataset_builder(name)
    except (ConnectionError, OSError, ValueError):
        return None
    splits = builder.info.splits or {}
    if split in splits and splits[split].num_examples:
        return int(splits[split].num_examples)
    files = [Path(f) for f in (builder.config.data_files or {}).get(split) or []]
    if not files or not all(f.is_file() and f.suffix in (".parquet", ".arrow") for f in files):
        return None
    return sum(_file_rows(f) for f in files)


def _file_rows(path: Path) -> int:
    """Rows of a local parquet file (its footer) or arrow stream (its batches, mapped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    with pa.memory_map(str(path)) as source:
        return sum(batch.num_rows for batch in pa.ipc.open_stream(source))


def row_boxes(row: dict, bbox_format: str) -> tuple[np.ndarray, np.ndarray]:
    """``(boxes xyxy float32 [N, 4], labels int64 [N] in 1..K)`` of one row."""
    objects = row.get("objects") or {}
    boxes = np.asarray(objects.get("bbox", []), np.float32).reshape(-1, 4)
    if bbox_format == "xywh":
        boxes = boxes.copy()
        boxes[:, 2:] += boxes[:, :2]
    elif bbox_format != "xyxy":
        raise InputError(f"bbox_format must be 'xywh' or 'xyxy', got {bbox_format!r}")
    labels = np.asarray(objects.get("category", []), np.int64).reshape(-1) + 1
    return boxes, labels


def row_key(image: dict) -> str:
    """What identifies a row's image: the digest of its bytes (or its path)."""
    if image.get("bytes"):
        return hashlib.sha1(image["bytes"]).hexdigest()
    return f"path:{image.get('path')}"


def decode_image(image: dict, root: Path | None, row: str) -> Image.Image:
    """An undecoded ``Image`` value (bytes, or a path inside the local dataset ``root``)
    decoded in full.

    Raises:
        UnreadableImageError: naming the ``row``: no bytes, a path outside the dataset, or
        data PIL cannot decode.
    """
    data = image.get("bytes")
    try:
        if data:
            im = Image.open(io.BytesIO(data))
        else:
            path = Path(str(image.get("path") or ""))
            inside = root is not None and path.resolve().is_relative_to(root.resolve())
            if not inside or not path.is_file():
                raise UnreadableImageError(
                    f"{row}: no image bytes, and {path} is not a file of the dataset"
                )
            im = Image.open(path)
        im.load()
        return im
    except UnreadableImageError:
        raise
    except Image.UnidentifiedImageError as err:
        raise UnreadableImageError(f"{row}: the bytes are not an image PIL can read") from err
    except Exception as err:  # PIL raises many types for bad data; all mean unreadable
        raise UnreadableImageError(f"{row}: the image cannot be decoded: {err}") from err


def shuffled(stream, seed: int, buffer: int):
    """``stream`` in a shuffled order of its files, through a ``buffer``-row shuffle buffer.
    Files are read one after another (datasets 4+ would read several in threads, then wait
    seconds for the reader threads at the end of every parquet pass)."""
    options = {"seed": seed, "buffer_size": buffer}
    if "max_buffer_input_shards" in inspect.signature(stream.shuffle).parameters:
        options["max_buffer_input_shards"] = 1
    return stream.shuffle(**options)


def row_name(row: dict, i: int) -> str:
    """How messages name a row: its image id when it has one."""
    return f"image_id {row['image_id']}" if "image_id" in row else f"row {i + 1}"


def undecoded(stream):
    """``stream`` giving its images undecoded (``{"bytes", "path"}``), for :func:`decode_image`."""
    datasets: Any = require("datasets", "hf", "reading hf: sources")
    return stream.cast_column("image", datasets.Image(decode=False))


def raw_rows(stream) -> Iterator[dict]:
    """The rows of a datasets stream (see :func:`undecoded`), read a few at a time."""
    for batch in stream.iter(batch_size=ROWS_PER_READ):
        columns = list(batch)
        for i in range(len(batch[columns[0]])):
            yield {c: batch[c][i] for c in columns}


def local_root(name: str) -> Path | None:
    return Path(name) if Path(name).is_dir() else None


IMAGE_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "BMP": ".bmp", "WEBP": ".webp"}


@dataclass
class Row:
    """One streamed row as a record: ``record.image`` holds the decoded image, or
    ``record.skip`` says why there is none (its problem is in ``problem``); ``data`` is the
    encoded image, ``key`` identifies it (:func:`row_key`)."""

    record: ImageRecord
    key: str
    data: bytes | None = None
    problem: str | None = None
    path: str | None = None  # where a row without bytes has its image


class HFRows:
    """The rows of one split of a ``hf:`` source, read one at a time (nothing is kept).

    Attributes:
        names: the class names from the ``objects.category`` ClassLabel, or None.
    """

    def __init__(self, source: str, split: str | None = None, bbox_format: str = "xywh") -> None:
        self.source, self.bbox_format = source, bbox_format
        self.name, default_split = parse_source(source)
        self.split = split or default_split
        self.stream = open_stream(self.name, self.split)
        self.names = class_names(self.stream)

    def __iter__(self) -> Iterator[Row]:
        root = local_root(self.name)
        for i, raw in enumerate(raw_rows(undecoded(self.stream))):
            yield self._row(raw, i, root)

    def _row(self, raw: dict, i: int, root: Path | None) -> Row:
        boxes, labels = row_boxes(raw, self.bbox_format)
        image_id = int(raw.get("image_id", i + 1))
        rec = ImageRecord("", None, None, None, boxes, labels, image_id=image_id)
        row = Row(
            rec, row_key(raw["image"]), raw["image"].get("bytes"), path=raw["image"].get("path")
        )
        try:
            image = decode_image(raw["image"], root, row_name(raw, i))
        except UnreadableImageError as err:
            rec.file_name, rec.skip, row.problem = f"{image_id:012d}.png", "image_corrupt", str(err)
            return row
        suffix = IMAGE_SUFFIXES.get(image.format or "", ".png")
        rec.file_name, rec.width, rec.height, rec.image = (
            f"{image_id:012d}{suffix}",
            image.width,
            image.height,
            image,
        )
        return row

    def chunks(
        self, size: int, limit: int | None = None
    ) -> Iterator[tuple[DetectionDataset, list[Row]]]:
        """The rows as datasets of at most ``size`` images each (an unreadable row is a
        record the checks skip as ``image_corrupt``), with the rows themselves."""
        rows = itertools.islice(iter(self), limit)
        while chunk := list(itertools.islice(rows, size)):
            yield self.dataset(chunk), chunk

    def first(self, limit: int | None = None) -> FirstRows:
        """The first ``limit`` rows (all when None) in memory, and their keys."""
        chunk = list(itertools.islice(iter(self), limit))
        return FirstRows(self.dataset(chunk), frozenset(r.key for r in chunk))

    def dataset(self, rows: list[Row]) -> DetectionDataset:
        """``rows`` as a dataset of this split (its problems: the unreadable images)."""
        names = self.names
        if names is None:
            top = max((int(r.record.labels.max()) for r in rows if r.record.num_boxes), default=0)
            names = [str(c) for c in range(top)]
        problems = ProblemLog()
        for r in rows:
            if r.problem:
                name = r.record.file_name
                problems.add("image_corrupt", r.problem, file=self.source, image=name)
        return DetectionDataset(
            Path("."),
            names,
            [r.record for r in rows],
            problems,
            source=self.source,
            format="hf",
            split=self.split,
        )


@dataclass
class FirstRows:
    """The first rows of a split, read into memory (see :func:`first_rows`)."""

    dataset: DetectionDataset
    keys: frozenset[str]


def first_rows(
    source: str, split: str | None = None, bbox_format: str = "xywh", limit: int | None = None
) -> FirstRows:
    """The first ``limit`` rows (all when None) as records with their images in memory (an
    unreadable one is a record the checks skip), and the keys of the rows read."""
    return HFRows(source, split, bbox_format).first(limit)


def read_hf(
    source: str, split: str | None = None, bbox_format: str = "xywh", limit: int | None = None
) -> DetectionDataset:
    """Stream a split into records with the images held in memory (for small datasets or a
    split's first rows; :class:`HFRows` reads any number, :class:`HFStreamDataset` trains)."""
    return first_rows(source, split, bbox_format, limit).dataset


@dataclass(frozen=True)
class StreamOptions:
    """How :class:`HFStreamDataset` reads a split.

    Attributes:
        split: the split (default: the source's, else ``train``).
        bbox_format: ``xywh`` (COCO) or ``xyxy``.
        buffer: rows in the shuffle buffer (0: stream order); with ``seed`` and the pass
            number the shuffle is the same on every rank and on a resume.
        rank, world_size: this process's share: every (rank, DataLoader worker) reads
            disjoint rows (``datasets.distributed.split_dataset_by_node``).
        held_out: keys (:func:`row_key`) of rows never trained on (the validation rows).
        start_batches: batches this rank already took (a resume continues after them).
        batch_size: items per batch, to split ``start_batches`` between workers.
        num_classes: labels above it are invalid boxes (None: not checked).
    """

    split: str | None = None
    bbox_format: str = "xywh"
    buffer: int = 0
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    held_out: frozenset[str] = field(default_factory=frozenset)
    start_batches: int = 0
    batch_size: int = 1
    num_classes: int | None = None


def worker_skip(start_batches: int, batch_size: int, workers: int, worker: int) -> int:
    """Items worker ``worker`` of ``workers`` made for the first ``start_batches`` batches:
    the DataLoader takes batch j from worker j mod workers."""
    return len(range(worker, start_batches, workers)) * batch_size


class HFStreamDataset(IterableDataset):
    """Streams ``(image, target)`` pairs without storing the dataset, through the same item
    pipeline as :class:`~frcnn.data.loader.DetectionTorchDataset` (augmentation, resizing),
    pass after pass without end (each pass shuffled anew): the training loop decides how
    many batches make an epoch. An unreadable row gives None (the loader's collate counts
    it); invalid boxes (not finite, empty, an unknown class) are dropped and counted in the
    target's ``invalid_dropped``."""

    def __init__(
        self,
        source: str,
        options: StreamOptions | None = None,
        augment=None,
        image_size: int | None = None,
    ) -> None:
        from .loader import DetectionTorchDataset

        self.options = o = options or StreamOptions()
        self.source = source
        self.name, default_split = parse_source(source)
        self.split = o.split or default_split
        self.root = local_root(self.name)
        self.items = DetectionTorchDataset(DetectionDataset(Path("."), [], []), augment, image_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]] | None]:
        o, info = self.options, torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        skip = worker_skip(o.start_batches, o.batch_size, workers, worker)
        part, parts = o.rank * workers + worker, o.world_size * workers
        if self.items.augment is not None:
            self.items.augment.set_part(part)
        for number in itertools.count():
            given = 0
            for i, row in enumerate(self._rows(number, part, parts)):
                if o.held_out and row_key(row["image"]) in o.held_out:
                    continue
                given += 1
                if skip:
                    skip -= 1
                    continue
                yield self._item(row, i)
            if not given:
                raise InputError(
                    f"{self.source}: process part {part + 1} of {parts} got no training rows "
                    "(fewer rows than ranks x data.workers, or all held out for validation)"
                )

    def _rows(self, number: int, part: int, parts: int) -> Iterator[dict]:
        """Pass ``number`` over this part's rows."""
        stream = undecoded(open_stream(self.name, self.split))
        if self.options.buffer:
            stream = shuffled(stream, self.options.seed, self.options.buffer)
            stream.set_epoch(number)
        if parts > 1:
            from datasets.distributed import split_dataset_by_node

            stream = split_dataset_by_node(stream, rank=part, world_size=parts)
        return raw_rows(stream)

    def _item(self, row: dict, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]] | None:
        from .images import to_rgb_array

        o = self.options
        image_id = int(row.get("image_id", i + 1))
        try:
            image = decode_image(row["image"], self.root, row_name(row, i))
        except UnreadableImageError as err:
            log.warning("warning: %s: skipped: %s", self.source, err)
            return None
        boxes, labels = row_boxes(row, o.bbox_format)
        valid = (
            np.isfinite(boxes).all(1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        )
        if o.num_classes is not None:
            valid &= (labels >= 1) & (labels <= o.num_classes)
        image, target = self.items.make_item(
            to_rgb_array(image),
            boxes[valid],
            labels[valid],
            np.zeros(int(valid.sum()), bool),
            image_id,
        )
        # Streamed rows are not checked ahead of time: invalid boxes are dropped here and
        # counted, for the training loop to report.
        target["invalid_dropped"] = torch.tensor(int((~valid).sum()))
        return image, target
