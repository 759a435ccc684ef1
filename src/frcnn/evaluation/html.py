"""``report.html``: one self-contained page (pictures embedded, no external requests) with
everything an evaluation found, for a person to read in a minute."""

from __future__ import annotations

import base64
import datetime
import html
import math
from collections.abc import Sequence
from pathlib import Path

from ..io.atomic import atomic_write_text
from .errors import DESCRIPTIONS, ERROR_TYPES, SPECIAL_TYPES
from .report import THRESHOLDS_NOTE, EvalResult

# Section ids, in page order; each is always present (saying so when there is nothing).
SECTIONS = (
    ("summary", "Summary"),
    ("curves", "Learning curves"),
    ("coco", "COCO summary"),
    ("classes", "Per class"),
    ("sizes", "Per size"),
    ("errors", "Error breakdown"),
    ("calibration", "Calibration"),
    ("confusion", "Confusion matrix"),
    ("pr-f1", "Precision-recall and F1 curves"),
    ("worst", "Worst images"),
    ("data", "Dataset"),
)

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;font-size:13px;opacity:.85}
nav{padding:8px 24px;background:#e8eef4;font-size:13px}nav a{margin-right:12px;color:#1f3b57}
main{padding:8px 24px 40px;max-width:1280px}section{margin:18px 0 28px}
h2{font-size:18px;border-bottom:2px solid #1f3b57;padding-bottom:3px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eef}
td:first-child,th:first-child,td.t{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:6px 6px 6px 0;vertical-align:top}
pre{background:#fff;border:1px solid #ddd;padding:8px;font-size:12px;overflow-x:auto}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border:1px solid #ccd;
border-radius:6px;padding:8px 14px;min-width:110px}.card b{display:block;font-size:20px}
.note{color:#555;font-size:13px}.missing{color:#888;font-style:italic}
"""


def image_tag(folder: Path, name: str, alt: str) -> str:
    """An ``<img>`` holding the file's bytes (a data URI), or a note that it is missing."""
    path = folder / name
    if not path.exists():
        return f'<p class="missing">{html.escape(alt)}: not available for this evaluation.</p>'
    kind = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/{kind};base64,{data}" alt="{html.escape(alt)}">'


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.3f}"
    return html.escape(str(v))


def _td(v: object) -> str:
    text = isinstance(v, str) and len(v) > 12  # prose: left-aligned
    return f'<td class="t">{_fmt(v)}</td>' if text else f"<td>{_fmt(v)}</td>"


def _table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return '<p class="missing">nothing to show</p>'
    columns = list(columns or rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_td(r.get(c, "")) for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cards(result: EvalResult) -> str:
    cards = [
        ("mAP50", result.coco["AP50"]),
        ("mAP50-95", result.coco["AP"]),
        (f"P @ {result.conf}", result.precision),
        (f"R @ {result.conf}", result.recall),
        (f"F1 @ {result.conf}", result.f1),
    ]
    if result.calibration is not None:
        cards.append(("ECE", result.calibration.ece))
    if result.errors is not None:
        worst = max(ERROR_TYPES, key=lambda t: result.errors.dap[t])
        cards.append((f"top error: {worst} (dAP50)", result.errors.dap[worst]))
    body = "".join(
        f'<div class="card">{html.escape(k)}<b>{_fmt(float(v))}</b></div>' for k, v in cards
    )
    return f'<div class="cards">{body}</div><p class="note">{html.escape(THRESHOLDS_NOTE)}.</p>'


def _errors_section(result: EvalResult, folder: Path) -> str:
    e = result.errors
    if e is None:
        return '<p class="missing">no error breakdown</p>'
    rows = [
        {"type": t, "dAP50": e.dap[t], "count": e.counts.get(t, ""), "meaning": DESCRIPTIONS[t]}
        for t in (*ERROR_TYPES, *SPECIAL_TYPES)
    ]
    columns = [
        "class",
        "AP50",
        *[f"dAP_{t}" for t in ERROR_TYPES],
        *[f"n_{t}" for t in ERROR_TYPES],
    ]
    return (
        f"<p>Every false positive and missed object gets one type (TIDE, Bolya et al. 2020); "
        f"dAP50 is the AP50 gained by fixing only that type (AP50 by TIDE's rules: "
        f"{e.ap50:.3f}, every detection up to max_dets). Fix the biggest bar first: "
        f"<b>Cls</b> more or cleaner class labels or merged look-alike classes; <b>Loc</b> "
        f"box quality (anchors, resolution, label accuracy); <b>Dupe</b> NMS; <b>Bkg</b> "
        f"hard negatives, more background images or a higher threshold; <b>Miss</b> small or "
        f"rare objects (see the per-size table), resolution, anchors, more data.</p>"
        + _table(rows)
        + image_tag(folder, "errors.png", "error breakdown")
        + "<h3>Per class</h3>"
        + _table(e.per_class, columns)
    )


def _calibration_section(result: EvalResult, folder: Path) -> str:
    r = result.calibration
    if r is None:
        return '<p class="missing">no calibration</p>'
    return (
        f"<p>Precision at IoU 0.5 of the detections in each score bin against their mean "
        f"score: on the diagonal the score is the chance that a detection is right. ECE "
        f"(expected calibration error, over every detection) {_fmt(r.ece)}. "
        f"<code>frcnn calibrate</code> fits a map that keeps the ranking (and mAP) and makes "
        f"scores probabilities.</p>"
        + image_tag(folder, "reliability.png", "reliability diagram")
        + _table(r.per_class)
    )


def _data_section(folder: Path, data_lines: Sequence[str]) -> str:
    text = "\n".join(data_lines) if data_lines else "no data check recorded for this evaluation"
    return f"<pre>{html.escape(text)}</pre>" + image_tag(
        folder, "labels.png", "labels per class and box sizes"
    )


def _body(result: EvalResult, folder: Path, data_lines: Sequence[str]) -> dict[str, str]:
    sizes = result.sizes
    return {
        "summary": _cards(result),
        "curves": image_tag(folder, "results.png", "learning curves (a training run's)"),
        "coco": f"<pre>{html.escape(result.coco_summary)}</pre>",
        "classes": f"<p>{html.escape(result.table().splitlines()[0])}.</p>"
        + _table([result.all_row(), *result.per_class]),
        "sizes": (
            f"<p>Box side sqrt(w&middot;h) in pixels of the original image: "
            f"{html.escape(sizes.bins_text())}.</p>" + _table(sizes.rows)
            if sizes
            else '<p class="missing">no size table</p>'
        ),
        "errors": _errors_section(result, folder),
        "calibration": _calibration_section(result, folder),
        "confusion": f"<p>Score &ge; {result.conf}, IoU 0.5; matched within the class first, so the "
        "diagonal holds the true positives.</p>"
        + image_tag(folder, "confusion_matrix.png", "confusion matrix")
        + image_tag(folder, "confusion_matrix_normalized.png", "confusion matrix, normalised"),
        "pr-f1": image_tag(folder, "PR_curve.png", "precision-recall curve")
        + image_tag(folder, "F1_curve.png", "F1 curve"),
        "worst": f"<p>The images with the most errors among detections scoring &ge; {result.conf}: "
        "objects on the left (missed ones in pink), detections on the right coloured by error type "
        "(green: correct).</p>"
        + image_tag(folder, "worst_images.jpg", "worst images")
        + image_tag(folder, "val_predictions.jpg", "validation predictions"),
        "data": _data_section(folder, data_lines),
    }


def write_report(
    result: EvalResult, folder: str | Path, title: str, data_lines: Sequence[str] = ()
) -> Path:
    """``folder/report.html`` from ``result`` and the pictures already in ``folder``."""
    folder = Path(folder)
    body = _body(result, folder, data_lines)
    nav = "".join(f'<a href="#{i}">{html.escape(t)}</a>' for i, t in SECTIONS)
    sections = "".join(
        f'<section id="{i}"><h2>{html.escape(t)}</h2>{body[i]}</section>' for i, t in SECTIONS
    )
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{result.num_images} images, "
        f"{len(result.class_names)} classes; written {when} by frcnn</p></header>"
        f"<nav>{nav}</nav><main>{sections}</main></body></html>\n"
    )
    return atomic_write_text(folder / "report.html", page)
