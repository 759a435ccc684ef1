"""Pictures of a run: curves, confusion matrix, label statistics, predictions on images."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib


def use_file_backend() -> None:
    """Draw to files (Agg), whatever display there is, except inside a notebook, whose
    inline backend already draws off screen: switching it would stop the notebook's own
    ``plt.show()`` from showing anything."""
    if "inline" not in str(matplotlib.rcParams["backend"]) + os.environ.get("MPLBACKEND", ""):
        matplotlib.use("Agg")


use_file_backend()
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from ..data.records import DetectionDataset, label_name  # noqa: E402
from .report import EvalResult  # noqa: E402

PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
]


def colour(label: int) -> tuple[int, int, int]:
    return PALETTE[(label - 1) % len(PALETTE)]


def plot_results(csv_path: Path, out: Path) -> None:
    """Losses (training, and validation dashed when measured), the learning rate and the
    metrics from ``results.csv``, one panel each, on whole-epoch axes (one epoch: its
    values as dots with their numbers)."""
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) for r in rows]
    columns = list(rows[0])

    def values(key: str) -> np.ndarray:
        return np.array([_float(r.get(key)) for r in rows])

    panels = {}
    for key in (k for k in columns if k.startswith("loss")):
        panels[key] = {"train": values(key)}
        if f"val_{key}" in columns:
            panels[key]["val"] = values(f"val_{key}")
    for key in (
        "lr",
        "mAP",
        "mAP50",
        "precision",
        "recall",
        "F1",
        "score",
        "train_accuracy",
        "accuracy",
    ):
        if key in columns:
            panels[key] = {key: values(key)}
    cols = 5
    n_rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.2 * cols, 2.6 * n_rows), squeeze=False)
    for ax, (key, series) in zip(axes.flat, panels.items(), strict=False):
        _epoch_panel(ax, epochs, series, key)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in ("", None) else np.nan
    except ValueError:
        return np.nan


def _epoch_panel(ax, epochs: list[int], series: dict[str, np.ndarray], key: str) -> None:
    """Curves against whole epochs (a legend when more than one); the y axis starts at 0
    for non-negative numbers; an undefined series says so."""
    from matplotlib.ticker import MaxNLocator

    for (name, values), style in zip(series.items(), ("-", "--"), strict=False):
        ax.plot(epochs, values, style, marker="o" if len(epochs) < 20 else None, ms=4, label=name)
    if len(series) > 1:
        ax.legend(fontsize=7)
    if max(epochs) - min(epochs) < 10:
        ax.set_xticks(range(min(epochs), max(epochs) + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
    every = np.concatenate(list(series.values()))
    finite = every[np.isfinite(every)]
    metric = not key.startswith("loss") and key != "lr"
    if not len(finite):
        ax.set_ylim(0, 1)
        ax.text(0.5, 0.5, "undefined", transform=ax.transAxes, ha="center", color="grey")
    elif key == "lr":
        ax.set_yscale("log" if finite.min() > 0 else "linear")
    elif finite.min() >= 0:
        ax.set_ylim(0, max(float(finite.max()) * 1.15, 0.1 if metric else 1e-3))
    if len(epochs) == 1:
        for values in series.values():
            if np.isfinite(values[0]):
                ax.annotate(
                    f"{values[0]:.4g}",
                    (epochs[0], values[0]),
                    textcoords="offset points",
                    xytext=(0, 6),
                    ha="center",
                    fontsize=8,
                )
    ax.set_title(key, fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)


def _finish_curve(fig, ax, out: Path, xlabel: str, ylabel: str, title: str) -> None:
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.01), title=title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_pr_curve(result: EvalResult, out: Path) -> None:
    """COCO precision against recall at IoU 0.5, per class and mean."""
    recall = np.linspace(0, 1, 101)
    p = result.coco_precision[0, :, :, 0, -1]  # (R, K)
    fig, ax = plt.subplots(figsize=(6, 5))
    valid = []
    for k, name in enumerate(result.class_names):
        if k < p.shape[1] and (p[:, k] > -1).any():
            ax.plot(
                recall,
                np.clip(p[:, k], 0, 1),
                lw=1,
                label=f"{name} {result.per_class[k]['mAP50']:.3f}",
            )
            valid.append(np.clip(p[:, k], 0, 1))
    if valid:
        ax.plot(
            recall,
            np.mean(valid, 0),
            lw=3,
            color="blue",
            label=f"all classes {result.map50:.3f} mAP@0.5",
        )
    _finish_curve(fig, ax, out, "Recall", "Precision", "Precision-Recall (IoU 0.5)")


def plot_f1_curve(result: EvalResult, out: Path) -> None:
    """F1 against the score threshold, per class and mean."""
    x, f1 = result.curves["threshold"], result.curves["f1"]
    fig, ax = plt.subplots(figsize=(6, 5))
    for k, name in enumerate(result.class_names):
        ax.plot(x, f1[k], lw=1, label=name)
    present = [r["instances"] > 0 for r in result.per_class]
    if any(present):
        ax.plot(
            x,
            f1[present].mean(0),
            lw=3,
            color="blue",
            label=f"all classes {result.f1_best:.2f} at {result.best_threshold:.3f}",
        )
    _finish_curve(fig, ax, out, "Confidence", "F1", "F1-Confidence (IoU 0.5)")


def plot_confusion(result: EvalResult, out: Path, normalize: bool = False) -> None:
    """The confusion matrix at ``eval.conf`` and IoU 0.5 (columns: true class, rows:
    predicted; background = missed objects and false alarms). ``normalize``: each column
    divided by its total, the share of each true class predicted as each row."""
    m = result.confusion.astype(float)
    if normalize:
        m = m / np.maximum(m.sum(0, keepdims=True), 1)
    names = [*result.class_names, "background"]
    side = max(5.0, 1.5 + 0.6 * len(names))  # room for the title and labels
    fig, ax = plt.subplots(figsize=(side + 1, side))
    shown = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                text = f"{m[i, j]:.2f}" if normalize else str(int(m[i, j]))
                dark = m[i, j] > 0.6 * m.max()
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    title = "Confusion matrix" + (" (normalised by true class)" if normalize else "")
    ax.set(xlabel="True", ylabel="Predicted")
    ax.set_title(f"{title}\nscore >= {result.conf}, IoU 0.5", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_confusions(result: EvalResult, folder: Path) -> None:
    """``confusion_matrix.png`` (counts) and ``confusion_matrix_normalized.png``."""
    plot_confusion(result, folder / "confusion_matrix.png")
    plot_confusion(result, folder / "confusion_matrix_normalized.png", normalize=True)


def plot_errors(result: EvalResult, out: Path) -> None:
    """The error breakdown: dAP50 per type (count beside each bar), and the FalsePos /
    FalseNeg bounds, as bar charts."""
    from .errors import ERROR_TYPES, SPECIAL_TYPES

    e = result.errors
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 1.2]})
    values = [e.dap[t] for t in ERROR_TYPES]
    a.barh(
        ERROR_TYPES[::-1],
        values[::-1],
        color=[np.array(ERROR_COLOURS[t]) / 255 for t in ERROR_TYPES[::-1]],
    )
    top = max(max(values), max(e.dap[t] for t in SPECIAL_TYPES), 0.01)
    for i, t in enumerate(ERROR_TYPES[::-1]):
        a.text(
            e.dap[t] + top * 0.01, i, f"{e.dap[t]:.3f}  ({e.counts[t]})", va="center", fontsize=8
        )
    a.set(xlim=(0, top * 1.3), xlabel="dAP50: AP50 gained by fixing only this type")
    a.set_title(
        f"Errors at IoU 0.5 (AP50 {e.ap50:.3f} by TIDE's rules; count in brackets)", fontsize=9
    )
    b.bar(SPECIAL_TYPES, [e.dap[t] for t in SPECIAL_TYPES], color=["#d62728", "#ff00be"])
    for i, t in enumerate(SPECIAL_TYPES):
        b.text(i, e.dap[t], f"{e.dap[t]:.3f}", ha="center", va="bottom", fontsize=8)
    b.set(ylim=(0, top * 1.2), ylabel="dAP50")
    b.set_title("perfect precision / recall", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_reliability(result: EvalResult, out: Path) -> None:
    """The reliability diagram: precision at IoU 0.5 per score bin against the bin's mean
    score (on the diagonal when scores are probabilities), detections per bin below."""
    r = result.calibration
    centres = (r.edges[:-1] + r.edges[1:]) / 2
    width = np.diff(r.edges)
    fig, (a, b) = plt.subplots(
        2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    a.bar(
        centres,
        np.nan_to_num(r.precision),
        width * 0.9,
        color="#1f77b4",
        label="precision (IoU 0.5)",
    )
    a.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    a.plot(centres, r.score, "o", color="orange", ms=5, label="mean score of the bin")
    ece = "undefined" if r.ece != r.ece else f"{r.ece:.3f}"
    a.set(xlim=(0, 1), ylim=(0, 1.02), ylabel="precision")
    a.set_title(
        f"Reliability of scores: ECE {ece} over {int(r.count.sum())} detections", fontsize=10
    )
    a.legend(fontsize=7, loc="upper left")
    b.bar(centres, r.count, width * 0.9, color="grey")
    b.set(xlabel="score", ylabel="detections")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_labels(ds: DetectionDataset, out: Path) -> None:
    """Instances per class and box sizes of a dataset."""
    labels = np.concatenate([r.labels for r in ds.images]) if ds.images else np.zeros(0, int)
    boxes = np.concatenate([r.boxes for r in ds.images]) if ds.images else np.zeros((0, 4))
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    counts = np.bincount(labels, minlength=ds.num_classes)[1:]
    a.bar(
        range(len(counts)),
        counts,
        color=[np.array(colour(i + 1)) / 255 for i in range(len(counts))],
    )
    a.set_xticks(range(len(counts)), ds.class_names, rotation=45, ha="right", fontsize=8)
    a.set(ylabel="instances", title="instances per class")
    b.scatter(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], s=3, alpha=0.4)
    b.set(xlabel="width (px)", ylabel="height (px)", title="box sizes")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def draw_detections(
    image: Image.Image,
    boxes: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    scores: np.ndarray | None = None,
    width: int | None = None,
    show_labels: bool = True,
    show_scores: bool = True,
) -> Image.Image:
    """A copy of ``image`` with boxes and, unless hidden, class names and (for predictions)
    scores. ``width`` defaults to about 0.2% of the image's width + height (at least 2 px);
    the label text grows with it."""
    texts = []
    for i, label in enumerate(np.asarray(labels).tolist()):
        parts = [label_name(class_names, label)] if show_labels else []
        if scores is not None and show_scores:
            parts.append(f"{float(scores[i]):.2f}")
        texts.append(" ".join(parts))
    return draw_boxes(image, boxes, [colour(c) for c in np.asarray(labels).tolist()], texts, width)


def draw_boxes(
    image: Image.Image,
    boxes: np.ndarray,
    colours: Sequence[tuple[int, int, int]],
    texts: Sequence[str],
    width: int | None = None,
) -> Image.Image:
    """A copy of ``image`` with each box outlined in its colour, its text (if any) on a bar
    of that colour above it."""
    image = image.convert("RGB").copy()
    if width is None:
        width = max(2, round(0.001 * (image.width + image.height)))
    font = ImageFont.load_default(size=max(11, 5 * width + 2))
    draw = ImageDraw.Draw(image)
    for box, c, text in zip(np.asarray(boxes).reshape(-1, 4).tolist(), colours, texts, strict=True):
        draw.rectangle(box, outline=c, width=width)
        if text:
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            tx, ty = box[0], max(0, box[1] - bottom - 2)
            draw.rectangle((tx, ty, tx + right + 4, ty + bottom + 2), fill=c)
            draw.text((tx + 2, ty), text, fill=(255, 255, 255), font=font)
    return image


def focus_window(width: int, height: int, boxes: np.ndarray, side: int) -> tuple[int, ...]:
    """A ``side`` x ``side`` window (clipped to the image) centred on the median centre of
    ``boxes`` (the image centre without boxes): where a large image's objects are."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes):
        cx, cy = (
            np.median((boxes[:, 0] + boxes[:, 2]) / 2),
            np.median((boxes[:, 1] + boxes[:, 3]) / 2),
        )
    else:
        cx, cy = width / 2, height / 2
    w, h = min(side, width), min(side, height)
    x1 = int(np.clip(round(cx - w / 2), 0, width - w))
    y1 = int(np.clip(round(cy - h / 2), 0, height - h))
    return x1, y1, x1 + w, y1 + h


def _in_window(boxes: np.ndarray, window: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes shifted into ``window``'s pixels and clipped to it; which overlap it at all."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = window
    shifted = np.clip(boxes - [x1, y1, x1, y1], 0, [x2 - x1, y2 - y1] * 2)
    inside = (shifted[:, 2] > shifted[:, 0]) & (shifted[:, 3] > shifted[:, 1])
    return shifted, inside


def panel(
    view: Image.Image,
    draw: Callable[[Image.Image, float], Image.Image],
    caption: str,
    cell: int,
) -> Image.Image:
    """``view`` scaled into a ``cell`` square under a caption bar, then ``draw(scaled, scale)``
    puts its boxes on at that scale (so labels keep a readable size)."""
    scale = min((cell - 18) / view.height, cell / view.width)
    size = (max(1, round(view.width * scale)), max(1, round(view.height * scale)))
    small = draw(view.resize(size), scale)
    panel = Image.new("RGB", (cell, cell), (255, 255, 255))
    panel.paste(small, (0, 18))
    ImageDraw.Draw(panel).text((4, 2), caption, fill=(0, 0, 0), font=ImageFont.load_default(14))
    return panel


def grid(panels: Sequence[Image.Image], cell: int, out: Path) -> None:
    """Panels four to a row (two image pairs), saved as one picture."""
    if not panels:
        return
    cols = min(4, len(panels))
    rows = (len(panels) + cols - 1) // cols
    grid = Image.new("RGB", (cols * cell, rows * cell), (255, 255, 255))
    for i, t in enumerate(panels):
        grid.paste(t, ((i % cols) * cell, (i // cols) * cell))
    grid.save(out, quality=90)


def _crop(image: Image.Image, gt_boxes: np.ndarray, crop: int) -> tuple[Image.Image, tuple, str]:
    """The view of an image drawn in a grid: a ``crop`` square where its objects are when
    it is larger, with a note saying so."""
    window = focus_window(image.width, image.height, gt_boxes, crop)
    whole = window == (0, 0, image.width, image.height)
    note = "" if whole else f" (crop at {window[0]},{window[1]})"
    return image.convert("RGB").crop(window), window, note


def prediction_grid(
    images: Sequence[Image.Image],
    truths: Sequence[tuple[np.ndarray, np.ndarray]],
    predictions: Sequence[dict],
    class_names: Sequence[str],
    out: Path,
    cell: int = 400,
    crop: int = 800,
    captions: Sequence[str] | None = None,
    conf: float | None = None,
) -> None:
    """Each image twice, side by side: ground truth, then predictions with scores (the
    panel says the threshold ``conf`` they were kept at, when given). An image larger than
    ``crop`` pixels is cropped to a ``crop`` square where its objects are (the caption says
    so), so that labels stay readable. ``captions`` (one per image) head the ground-truth
    panel."""
    panels = []
    captions = captions or ["ground truth"] * len(images)
    found_caption = "predictions" if conf is None else f"predictions, score >= {conf:g}"
    pairs = zip(images, truths, predictions, captions, strict=True)
    for image, (gt_boxes, gt_labels), pred, caption in pairs:
        view, window, note = _crop(image, gt_boxes, crop)
        gt, gt_in = _in_window(gt_boxes, window)
        pb, p_in = _in_window(pred["boxes"], window)
        truth = (gt[gt_in], np.asarray(gt_labels)[gt_in], None)
        found = (pb[p_in], np.asarray(pred["labels"])[p_in], np.asarray(pred["scores"])[p_in])
        panels += [
            panel(view, _labelled(truth, class_names), f"{caption}{note}", cell),
            panel(view, _labelled(found, class_names), found_caption, cell),
        ]
    grid(panels, cell, out)


def _labelled(
    drawn: tuple, class_names: Sequence[str]
) -> Callable[[Image.Image, float], Image.Image]:
    boxes, labels, scores = drawn
    return lambda im, scale: draw_detections(im, boxes * scale, labels, class_names, scores, 2)


def _coloured(
    boxes: np.ndarray, colours: list, texts: list
) -> Callable[[Image.Image, float], Image.Image]:
    return lambda im, scale: draw_boxes(im, boxes * scale, colours, texts, 2)


# Colours of the error types (and of true positives) in the worst-images gallery.
ERROR_COLOURS = {
    "TP": (0, 150, 0),
    "Cls": (255, 120, 0),
    "Loc": (200, 170, 0),
    "Both": (150, 60, 200),
    "Dupe": (0, 110, 230),
    "Bkg": (220, 20, 20),
    "Miss": (255, 0, 190),
    "Near": (120, 120, 120),  # an object found only by a Cls or Loc error
}


def error_grid(
    images: Sequence[Image.Image],
    panels_boxes: Sequence[tuple[tuple, tuple]],
    captions: Sequence[str],
    out: Path,
    cell: int = 400,
    crop: int = 800,
) -> None:
    """Each image twice: its objects (found, missed) and its detections, each box coloured
    and named by its error type (:data:`ERROR_COLOURS`). ``panels_boxes`` holds per image
    ``((gt_boxes, gt_texts, gt_types), (boxes, texts, types))``."""
    panels = []
    for image, (truth, found), caption in zip(images, panels_boxes, captions, strict=True):
        view, window, note = _crop(image, truth[0], crop)
        sides = []
        for boxes, texts, types in (truth, found):
            shown, inside = _in_window(boxes, window)
            keep = np.flatnonzero(inside)
            sides.append(
                _coloured(
                    shown[keep], [ERROR_COLOURS[types[i]] for i in keep], [texts[i] for i in keep]
                )
            )
        panels += [
            panel(view, sides[0], f"{caption}{note}", cell),
            panel(view, sides[1], "detections by error type", cell),
        ]
    grid(panels, cell, out)
