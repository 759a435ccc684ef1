# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---


# %% [markdown]
# # 6. Inference and evaluation: proposals, detections, COCO numbers, error breakdown
#
# A trained model turns an image into a few hundred proposals and those into a handful of
# detections. This tutorial draws both, computes one class's AP50 by hand and finds it
# equal to the COCO number `frcnn.evaluate` reports, then reads what the evaluation says
# about the model's mistakes: which kind of error costs how much AP, and whether its scores
# can be read as probabilities. About four minutes on a laptop CPU.

# %%
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, display
from torchvision.ops import box_iou

import frcnn

work = Path("t06")
shutil.rmtree(work, ignore_errors=True)
work.mkdir()
sizes = (32, 112)  # object sides in pixels: larger than the default mix, learnt sooner
frcnn.write_synth(work / "train", 300, size=256, seed=0, object_size=sizes)
frcnn.write_synth(work / "val", 40, size=256, seed=1, object_size=sizes)
result = frcnn.train(
    "cpu-fast",
    **{
        "data.train": str(work / "train"),
        "data.val": str(work / "val"),
        "schedule.time_budget": 3.0,
        "run.out": str(work / "run"),
        "run.progress": False,
    },
)
val = frcnn.read_dataset(work / "val")
names = val.class_names

# %% [markdown]
# ## Which score threshold?
# A detector scores every box; a threshold decides which count. The `cpu-fast` recipe
# evaluates at 0.5, right for a finished model, but three minutes of training leave the
# classifier unsure and few scores reach it. `frcnn.evaluate` also reports the threshold
# that maximises F1 on the images it scored: this tutorial uses that one. (Choose it on
# validation images, never on the test set.)

# %%
ev = frcnn.evaluate(result.best, work / "val", conf=0.5, out=work / "eval")
conf = round(ev.best_threshold, 2)
print(f"at 0.5: precision {ev.precision:.3f}, recall {ev.recall:.3f}, F1 {ev.f1:.3f}")
print(
    f"best F1 {ev.f1_best:.3f} at {conf} (precision {ev.precision_best:.3f}, "
    f"recall {ev.recall_best:.3f})"
)
display(Image(filename=str(work / "eval" / "F1_curve.png")))

# %% [markdown]
# ## From proposals to detections
# `frcnn.trace_stages` runs the model's own modules one at a time and keeps what each
# produced. Left: the proposals the RPN hands to the RoI head (thin, the first 100 of them
# by objectness). Right: the detections that survive the score threshold (0.05, as in
# torchvision) and per-class NMS; the model keeps up to 100, most of them unsure, so those
# scoring `conf` or more are drawn, with the objects in white.

# %%
model = frcnn.load_model(result.best)
record = val.images[3]
trace = frcnn.trace_stages(model, frcnn.read_image(record.path))
det = trace.detections
sure = det["scores"] >= conf
print(
    f"{len(trace.proposals)} proposals -> {len(det['boxes'])} detections, "
    f"{int(sure.sum())} scoring >= {conf} ({len(record.boxes)} objects in the image)"
)


def draw(ax, boxes, color, width, labels=None, scores=None):
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=width))
        if labels is not None:
            text = f"{names[int(labels[i]) - 1]} {float(scores[i]):.2f}"
            ax.text(x1, y1 - 2, text, color=color, fontsize=7)


fig, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax in axes:
    ax.imshow(trace.image.permute(1, 2, 0))
    ax.axis("off")
draw(axes[0], trace.proposals[:100], "tab:orange", 0.6)
axes[0].set_title("100 of the proposals")
sy, sx = trace.scale  # the model resized the image: objects to its pixels
draw(axes[1], record.boxes * np.array([sx, sy, sx, sy]), "white", 2)
draw(axes[1], det["boxes"][sure], "tab:red", 1.5, det["labels"][sure], det["scores"][sure])
axes[1].set_title(f"detections >= {conf} (red), objects (white)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Predicting files
# `frcnn.predict` takes files, folders, globs or images in memory and returns boxes in the
# original image's pixels; with `out` it writes them (JSON, COCO results or CSV) and, with
# `save_images`, drawn copies. `conf` is the score threshold: detections below it are not
# returned.

# %%
preds = frcnn.predict(
    result.best, work / "val" / "images", conf=conf, out=work / "predict", save_images=True
)
p = preds[3]
print(p.path.name, p.width, "x", p.height)
for box, score, label in zip(p.boxes, p.scores, p.labels, strict=True):
    print(f"  {names[label - 1]:9s} {score:.3f}  {np.round(box, 1)}")
drawn = sorted(f for f in (work / "predict").rglob("*.jpg") if f.stem == p.path.stem)
display(Image(filename=str(drawn[0])))

# %% [markdown]
# ## AP50 by hand
# COCO's average precision for one class at IoU 0.5: every detection of that class on every
# image (the model keeps at most 100 per image), best score first; a detection is a true
# positive when it overlaps a not yet matched object by IoU >= 0.5 (the best such object),
# else a false positive. Precision and recall after each detection make a curve; its
# precision is made non-increasing from the right, read at the 101 recall levels 0, 0.01,
# ..., 1 (zero beyond the highest recall reached) and averaged.

# %%
every = frcnn.predict(result.best, [r.path for r in val.images], conf=0.0)


def ap50(cls: int) -> float:
    hits, scores, total = [], [], 0
    for record, pred in zip(val.images, every, strict=True):
        gt = torch.from_numpy(record.boxes[record.labels == cls])
        total += len(gt)
        keep = pred.labels == cls
        order = np.argsort(-pred.scores[keep], kind="stable")
        boxes = torch.from_numpy(pred.boxes[keep][order])
        iou = box_iou(boxes, gt) if len(gt) else torch.zeros(len(boxes), 0)
        taken = torch.zeros(len(gt), dtype=torch.bool)
        for i in range(len(boxes)):
            hit = False
            if len(gt):
                candidates = iou[i].masked_fill(taken, -1)  # matched objects are taken
                j = int(candidates.argmax())
                hit = bool(candidates[j] >= 0.5)
                taken[j] |= hit
            hits.append(hit)
        scores.extend(pred.scores[keep][order].tolist())
    order = np.argsort(-np.array(scores), kind="mergesort")
    tp = np.cumsum(np.array(hits, dtype=float)[order])
    recall = tp / total
    precision = tp / np.arange(1, len(tp) + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # non-increasing
    at = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return float(np.where(at < len(precision), precision[np.minimum(at, len(tp) - 1)], 0).mean())


print(f"{'class':10s} {'by hand':>8s} {'frcnn':>8s}")
for k, row in enumerate(ev.per_class, start=1):
    print(f"{row['class']:10s} {ap50(k):8.4f} {row['mAP50']:8.4f}")

# %% [markdown]
# ## The COCO summary
# The mean over classes is mAP50; `AP` (mAP50-95) averages the same over IoU thresholds
# 0.5, 0.55, ..., 0.95, so it rewards tight boxes; AP75 asks for IoU 0.75. Small, medium
# and large are objects under 32 x 32 px, up to 96 x 96 px, and above. AR is the recall
# with at most 1, 10 or 100 detections per image. These are the numbers pycocotools'
# COCOeval gives for the same detections (frcnn's tests check it to the decimal).

# %%
print(ev.coco_summary)

# %% [markdown]
# ## Which mistakes cost the most
# Every detection that is not a clean true positive gets one type (TIDE, Bolya et al.
# 2020): **Cls** right place, wrong class; **Loc** right class, IoU between 0.1 and 0.5;
# **Both** wrong class and poor box; **Dupe** a second detection of an object already found;
# **Bkg** nothing there; and **Miss** an object no detection found. Fixing one type alone
# (as TIDE does it) and scoring again gives the AP50 that type costs: dAP. The counts
# include every low-scoring detection, so read dAP, not the counts.

# %%
errors = ev.errors
print(f"AP50 {errors.ap50:.3f}; what fixing each type would add:")
for kind, gain in errors.dap.items():
    count = errors.counts.get(kind)
    print(f"  {kind:9s} +{gain:.3f}" + (f"  ({count} errors)" if count is not None else ""))
display(Image(filename=str(work / "eval" / "errors.png")))

# %% [markdown]
# The largest dAP says where to work. In the run rendered with this tutorial, class
# confusions (Cls) cost the most: the objects are found and boxed, the classifier is not
# yet sure which shape it sees, which more training or more data fixes; a large Loc would
# point at box regression (longer training, `anchor_sizes`), a large Miss at objects the
# RPN never proposes (anchors, image size), a large Bkg at backgrounds mistaken for objects
# (more negative images).
#
# The images with the most errors, each box named by its error type:

# %%
display(Image(filename=str(work / "eval" / "worst_images.jpg")))

# %% [markdown]
# ## Can the scores be read as probabilities?
# Detections binned by score: if the scores were calibrated, the detections scoring about
# 0.8 would be right 80% of the time. The expected calibration error (ECE) is the
# detection-weighted mean gap. `frcnn.calibrate` fits a per-class mapping on held-out
# images and stores it in the model file (`predict --calibrated` applies it).

# %%
print(f"ECE {ev.calibration.ece:.3f}")
display(Image(filename=str(work / "eval" / "reliability.png")))

# %% [markdown]
# ## Everything on one page
# `frcnn eval --weights W --data DATA --out DIR` (or `frcnn.evaluate(..., out=DIR)`) writes
# all of this, with the per-class and per-size tables, confusion matrices and PR curves, to
# `report.html`: one self-contained page that opens offline.

# %%
print(sorted(f.name for f in (work / "eval").iterdir()))
