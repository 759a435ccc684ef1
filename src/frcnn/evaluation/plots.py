"""Pictures of a run: curves, confusion matrix, label statistics, predictions on images."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

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
    """Loss and metric curves from ``results.csv``."""
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) for r in rows]
    keys = [k for k in rows[0] if k.startswith("loss_")] + [
        k for k in ("mAP", "mAP50", "precision", "recall", "F1", "score") if k in rows[0]
    ]
    cols = 5
    fig, axes = plt.subplots(
        (len(keys) + cols - 1) // cols,
        cols,
        figsize=(3.2 * cols, 2.6 * ((len(keys) + cols - 1) // cols)),
        squeeze=False,
    )
    for ax, key in zip(axes.flat, keys, strict=False):
        values = [float(r[key]) if r[key] not in ("", None) else np.nan for r in rows]
        ax.plot(epochs, values, marker=".")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


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
            label=f"all classes {result.f1:.2f} at {result.best_threshold:.3f}",
        )
    _finish_curve(fig, ax, out, "Confidence", "F1", "F1-Confidence (IoU 0.5)")


def plot_confusion(result: EvalResult, out: Path) -> None:
    m = result.confusion.astype(float)
    names = [*result.class_names, "background"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(names), 0.8 + 0.6 * len(names)))
    ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=8, color="black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set(
        xlabel="True",
        ylabel="Predicted",
        title=f"Confusion matrix (score >= {result.conf}, IoU 0.5)",
    )
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
    width: int = 2,
) -> Image.Image:
    """A copy of ``image`` with boxes, class names and (for predictions) scores."""
    image = image.convert("RGB").copy()
    draw = ImageDraw.Draw(image)
    for i, (box, label) in enumerate(
        zip(np.asarray(boxes).tolist(), np.asarray(labels).tolist(), strict=True)
    ):
        name = label_name(class_names, label)
        text = name if scores is None else f"{name} {float(scores[i]):.2f}"
        c = colour(label)
        draw.rectangle(box, outline=c, width=width)
        tx, ty = box[0], max(0, box[1] - 11)
        draw.rectangle((tx, ty, tx + 6 * len(text) + 4, ty + 11), fill=c)
        draw.text((tx + 2, ty), text, fill=(255, 255, 255))
    return image


def prediction_grid(
    images: Sequence[Image.Image],
    truths: Sequence[tuple[np.ndarray, np.ndarray]],
    predictions: Sequence[dict],
    class_names: Sequence[str],
    out: Path,
    cell: int = 320,
) -> None:
    """A grid of images: ground truth (thin, dashed look by width 1) and predictions."""
    tiles = []
    for image, (gt_boxes, gt_labels), pred in zip(images, truths, predictions, strict=True):
        drawn = draw_detections(image, gt_boxes, gt_labels, class_names, width=1)
        drawn = draw_detections(
            drawn, pred["boxes"], pred["labels"], class_names, pred["scores"], width=2
        )
        drawn.thumbnail((cell, cell))
        tiles.append(drawn)
    if not tiles:
        return
    cols = min(4, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    grid = Image.new("RGB", (cols * cell, rows * cell), (255, 255, 255))
    for i, t in enumerate(tiles):
        grid.paste(t, ((i % cols) * cell, (i // cols) * cell))
    grid.save(out, quality=90)
