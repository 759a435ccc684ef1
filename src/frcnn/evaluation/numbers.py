"""How evaluation numbers are written: in JSON and CSV (rounded, NaN as undefined) and in
printed tables (3 decimals, ``-`` where undefined)."""

from __future__ import annotations

import math


def json_number(value: object, undefined: object = None) -> object:
    """A float rounded to 6 digits, ``undefined`` for NaN (JSON has no NaN); other values
    as they are."""
    if isinstance(value, float):
        return undefined if math.isnan(value) else round(value, 6)
    return value


def json_row(row: dict, undefined: object = None) -> dict:
    """:func:`json_number` of every value of a table row."""
    return {k: json_number(v, undefined) for k, v in row.items()}


def cell(value: object, width: int) -> str:
    """A table cell: 3 decimals, ``-`` for NaN or a missing number."""
    if not isinstance(value, float) or math.isnan(value):
        return f"{'-':>{width}}"
    return f"{value:>{width}.3f}"
