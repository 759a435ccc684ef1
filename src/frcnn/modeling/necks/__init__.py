"""Necks by name (``fpn``, ``pan``): they turn a backbone's levels into the detector's pyramid."""

from . import fpn, pan  # noqa: F401 (registers "fpn" and "pan")
from .base import NECKS

__all__ = ["NECKS"]
