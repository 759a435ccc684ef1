"""Everything an evaluation writes to a folder: numbers, plots, worst images, report.html."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..data.records import DetectionDataset
from .report import EvalResult


def write_evaluation(
    result: EvalResult,
    ds: DetectionDataset,
    out: str | Path,
    title: str,
    data_lines: Sequence[str] = (),
    max_dets: int = 100,
    exif: bool = True,
    worst: int = 8,
    worst_by: str | None = None,
) -> Path:
    """``metrics.json``, the CSV tables, PR/F1 curves, confusion matrices, error and
    reliability charts, ``worst_images.jpg`` (``worst`` images, ranked by all errors or by
    the type ``worst_by``) and ``report.html``, which embeds these and whatever other
    pictures ``out`` already holds (a run's curves). Returns the report's path."""
    from . import plots
    from .gallery import write_worst_images
    from .html import write_report

    out = Path(out)
    result.write(out)
    plots.plot_pr_curve(result, out / "PR_curve.png")
    plots.plot_f1_curve(result, out / "F1_curve.png")
    plots.plot_confusions(result, out)
    if result.errors is not None:
        plots.plot_errors(result, out / "errors.png")
    if result.calibration is not None:
        plots.plot_reliability(result, out / "reliability.png")
    if worst > 0 and result.predictions:
        write_worst_images(
            ds,
            result.predictions,
            result.conf,
            out / "worst_images.jpg",
            worst,
            max_dets,
            exif,
            worst_by,
        )
    return write_report(result, out, title, data_lines)
