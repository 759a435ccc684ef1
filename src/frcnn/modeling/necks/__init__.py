"""Necks by name (FPN now): they turn a backbone's levels into the detector's pyramid."""

from . import fpn  # noqa: F401 (registers "fpn")
from .base import NECKS

__all__ = ["NECKS"]
