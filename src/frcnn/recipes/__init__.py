"""Named training recipes: YAML configurations shipped with frcnn that ``frcnn train
--config NAME`` (and :func:`frcnn.load_config`) accept besides a path. ``frcnn recipes``
lists them; each file's first comment line says what it is for."""

from __future__ import annotations

import re
from pathlib import Path

RECIPES_DIR = Path(__file__).parent


def recipe_names() -> list[str]:
    """The shipped recipes, by name."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name: str) -> Path | None:
    """The file of recipe ``name`` (None when there is no such recipe)."""
    path = RECIPES_DIR / f"{name}.yaml"
    return path if name in recipe_names() else None


def recipe_summary(name: str) -> str:
    """The first sentence of a recipe's leading comment, without its ``name:`` prefix."""
    lines = []
    for line in (RECIPES_DIR / f"{name}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    text = " ".join(lines).removeprefix(f"{name}:").strip()
    return re.split(r"\.(?:\s|$)", text, maxsplit=1)[0] + "."
