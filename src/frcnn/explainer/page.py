"""``explain.html``: every stage's picture on one self-contained page (pictures embedded), and
``explain.json`` with each stage's counts."""

from __future__ import annotations

import datetime
import html
import json
from collections.abc import Sequence
from pathlib import Path

from ..evaluation.html import STYLE, image_tag
from ..io.atomic import atomic_write_text
from .stages import Stage


def _section(stage: Stage, folder: Path) -> str:
    pictures = stage.files
    counts = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in stage.counts.items()
    )
    return (
        f'<section id="{stage.key}"><h2>{html.escape(stage.title)}</h2>'
        f'<p class="note">{html.escape(stage.text)}</p>'
        + "".join(image_tag(folder, p, stage.title) for p in pictures)
        + (f"<table>{counts}</table>" if counts else "")
        + "</section>"
    )


def write_page(stages: Sequence[Stage], folder: Path, title: str, lines: Sequence[str]) -> Path:
    """``folder/explain.html`` and ``folder/explain.json`` for ``stages`` drawn in ``folder``;
    ``lines`` describe the model and the image (the page's header)."""
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in stages)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    header = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1>{header}<p>written {when} by frcnn</p></header>"
        f"<nav>{nav}</nav><main>{''.join(_section(s, folder) for s in stages)}</main>"
        "</body></html>\n"
    )
    summary = {s.key: {"title": s.title, "file": s.file, "counts": s.counts} for s in stages}
    atomic_write_text(folder / "explain.json", json.dumps(summary, indent=2) + "\n")
    return atomic_write_text(folder / "explain.html", page)
