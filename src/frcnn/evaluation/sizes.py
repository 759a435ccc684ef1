"""AP and AR per object size and class, from COCOeval's arrays.

Sizes are bins of an object's side, the square root of its box area ``w * h`` in pixels of
the original image: COCO's are small (side < 32), medium (32 to 96) and large (>= 96). As
in COCOeval, a bin holds the objects whose area lies in ``[lo^2, hi^2]`` (both ends
included) and a detection outside the bin that matches nothing in it is not counted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.records import DetectionDataset
from ..errors import InputError
from .numbers import cell, json_row

COCO_SIZES = (0.0, 32.0, 96.0, math.inf)
COCO_SIZE_NAMES = ("small", "medium", "large")


def parse_sizes(edges: Sequence[float] | None) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """Size bin edges (box sides in pixels, increasing; ``inf`` allowed last) and their names;
    COCO's when ``edges`` is None.

    Raises:
        ValueError: fewer than two edges, or not increasing.
    """
    if edges is None:
        return COCO_SIZES, COCO_SIZE_NAMES
    edges = tuple(float(e) for e in edges)
    if (
        len(edges) < 2
        or any(b <= a for a, b in zip(edges, edges[1:], strict=False))
        or edges[0] < 0
    ):
        raise InputError(
            f"size bins need increasing box sides >= 0 in pixels (e.g. 0 16 32 inf), got {edges}"
        )
    names = tuple(
        f"{_px(a)}-{_px(b)}" if math.isfinite(b) else f">={_px(a)}"
        for a, b in zip(edges, edges[1:], strict=False)
    )
    return edges, names


def _px(v: float) -> str:
    return f"{v:g}"


@dataclass
class SizeTable:
    """AP50, AP (IoU 0.50:0.95) and AR (at the evaluation's max detections) per size bin,
    for all classes and each class.

    Attributes:
        edges: bin edges (box side in pixels).
        names: one per bin.
        rows: ``class`` ("all" first), ``size``, ``instances``, ``AP50``, ``AP``, ``AR``;
            NaN where the bin holds no object of the class.
    """

    edges: tuple[float, ...]
    names: tuple[str, ...]
    rows: list[dict[str, object]]

    def bins_text(self) -> str:
        return ", ".join(
            f"{n} {_px(a)}-{_px(b)} px" if math.isfinite(b) else f"{n} >= {_px(a)} px"
            for n, a, b in zip(self.names, self.edges, self.edges[1:], strict=False)
        )

    def table(self, classes: bool = False) -> str:
        """The ``all`` rows (every row with ``classes``) as text."""
        lines = [f"{'class':<20}{'size':>12}{'instances':>10}{'AP50':>8}{'AP':>8}{'AR':>8}"]
        for r in self.rows:
            if classes or r["class"] == "all":
                cells = "".join(cell(r[k], 8) for k in ("AP50", "AP", "AR"))
                lines.append(
                    f"{str(r['class'])[:19]:<20}{str(r['size']):>12}{r['instances']:>10}{cells}"
                )
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "edges_px": [e if math.isfinite(e) else None for e in self.edges],
            "names": list(self.names),
            "rows": [json_row(r) for r in self.rows],
        }


def _mean_valid(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    valid = x > -1
    with np.errstate(invalid="ignore"):
        return np.where(valid, x, 0).sum(axes) / valid.sum(axes)


def size_table(
    precision: np.ndarray,
    recall: np.ndarray,
    category_ids: Sequence[int],
    ds: DetectionDataset,
    edges: Sequence[float],
    names: Sequence[str],
) -> SizeTable:
    """The table from COCOeval arrays whose areas are ``[all, *bins]`` (precision [T, R, K,
    A, M], recall [T, K, A, M]; the last max-dets used)."""
    p, r = precision[..., 1:, -1], recall[..., 1:, -1]  # (T, R, K, S), (T, K, S)
    per_class = {
        "AP": _mean_valid(p, (0, 1)),
        "AP50": _mean_valid(p[0], (0,)),
        "AR": _mean_valid(r, (0,)),
    }  # each (K, S)
    overall = {
        "AP": _mean_valid(p, (0, 1, 2)),
        "AP50": _mean_valid(p[0], (0, 1)),
        "AR": _mean_valid(r, (0, 1)),
    }  # each (S,)
    counts = _instances(ds, edges)  # (K + 1, S)
    rows = []
    for s, name in enumerate(names):
        rows.append(
            {
                "class": "all",
                "size": name,
                "instances": int(counts[1:, s].sum()),
                **_take(overall, s),
            }
        )
    column = {cid: k for k, cid in enumerate(category_ids)}
    for c, cname in enumerate(ds.class_names, start=1):
        for s, name in enumerate(names):
            k = column.get(c)
            values = {key: float(v[k, s]) for key, v in per_class.items()} if k is not None else {}
            rows.append(
                {
                    "class": cname,
                    "size": name,
                    "instances": int(counts[c, s]),
                    **{key: values.get(key, math.nan) for key in ("AP50", "AP", "AR")},
                }
            )
    return SizeTable(tuple(edges), tuple(names), rows)


def _take(values: dict[str, np.ndarray], s: int) -> dict[str, float]:
    return {key: float(values[key][s]) for key in ("AP50", "AP", "AR")}


def _instances(ds: DetectionDataset, edges: Sequence[float]) -> np.ndarray:
    """Regular objects per class [K + 1] and size bin, counted as COCOeval bins them."""
    counts = np.zeros((ds.num_classes, len(edges) - 1), np.int64)
    lo, hi = np.asarray(edges[:-1]) ** 2, np.asarray(edges[1:]) ** 2
    for rec in ds.images:
        keep = ~(rec.iscrowd | rec.ignore)
        b = rec.boxes[keep].astype(np.float64)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        inside = (area[:, None] >= lo[None]) & (area[:, None] <= hi[None])
        np.add.at(counts, rec.labels[keep], inside.astype(np.int64))
    return counts
