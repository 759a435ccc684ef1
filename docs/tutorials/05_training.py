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
# # 5. Training: losses, schedule, time budget, curves, top-k checkpoints
#
# Faster R-CNN learns from four losses at once. This tutorial computes them by hand on an
# untrained model, then trains with a two-minute time budget while a callback records every
# step, and reads what the run left behind: the learning-rate schedule fitted to the budget,
# the per-step and per-epoch curves, and the checkpoints kept. About three minutes on a
# laptop CPU.

# %%
import csv
import math
import os
import shutil
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, display

import frcnn

work = Path("t05")
shutil.rmtree(work, ignore_errors=True)
work.mkdir()
frcnn.write_synth(work / "train", 200, size=256, seed=0)
frcnn.write_synth(work / "val", 20, size=256, seed=1)
ds = frcnn.read_dataset(work / "train")
print(len(ds), "training images,", ds.num_boxes, "boxes, classes", ds.class_names)

# %% [markdown]
# ## The four losses
# In training mode the model takes images and their objects and returns a dictionary of
# losses (the same four as torchvision's Faster R-CNN):
#
# - `loss_objectness`: binary cross-entropy of the RPN's object/background call on 256
#   sampled anchors per image;
# - `loss_rpn_box_reg`: smooth L1 of the RPN's box deltas, positive anchors only;
# - `loss_classifier`: cross-entropy over background and the classes on the RoI head's
#   sample of proposals;
# - `loss_box_reg`: smooth L1 of the class-specific box deltas, positive RoIs only.
#
# A freshly built model predicts about zero for every logit, so the two classification
# losses start where chance is: `ln 2` for object/background, `ln(K + 1)` for K classes and
# background. The regression losses start small because deltas are small numbers.

# %%
model = frcnn.build_model("resnet18_fpn", len(ds.class_names) + 1, min_size=256, max_size=256)
model.train()
records = ds.images[:4]
images = [frcnn.read_image(r.path) for r in records]  # float CHW RGB in 0..1
targets = [
    {"boxes": torch.from_numpy(r.boxes), "labels": torch.from_numpy(r.labels)} for r in records
]
torch.manual_seed(0)
losses = model(images, targets)
for name, value in losses.items():
    print(f"{name:18s} {value.item():.4f}")
print(
    f"chance: ln 2 = {math.log(2):.4f}, ln(K + 1) = ln {len(ds.class_names) + 1} = "
    f"{math.log(len(ds.class_names) + 1):.4f}"
)

# %% [markdown]
# ## Training against the clock
# `schedule.time_budget` (minutes) makes the run end inside the budget with a complete
# schedule: after every step the trainer measures how long steps and evaluations take and
# refits the number of epochs, so the warm-up and the cosine decay span the time there is.
# A callback (any `frcnn.Callback`) sees every step; this one records the losses, the
# learning rate and the clock. `eval.top_k=3` keeps the three best epochs' weights.


# %%
class Recorder(frcnn.Callback):
    def __init__(self):
        self.rows = []

    def after_step(self, state):  # the run's TrainState
        self.rows.append({"t": state.elapsed(), "lr": state.lr, **state.step_losses})


recorder = Recorder()
budget = 2.0
started = time.perf_counter()
result = frcnn.train(
    "cpu-fast",
    callbacks=[recorder],
    **{
        "data.train": str(work / "train"),
        "data.val": str(work / "val"),
        "schedule.time_budget": budget,
        "eval.top_k": 3,
        "run.out": str(work / "run"),
        "run.progress": False,
    },
)
wall = time.perf_counter() - started
print(f"{result.epochs} epochs, {len(recorder.rows)} steps, best epoch {result.best_epoch}")
print(
    f"budget {budget * 60:.0f} s; training {recorder.rows[-1]['t']:.0f} s; "
    f"with data checks, final evaluation and plots {wall:.0f} s"
)

# %% [markdown]
# ## Every step
# The losses of each step (thin) and their running mean over 10 steps (thick), and the
# learning rate: a linear warm-up over half an epoch, then a cosine decay that reaches zero
# at the end of the budget, however many epochs that turned out to be (the flat stretches
# are the evaluations after each epoch: the clock runs, the schedule waits).
#
# The RPN's losses fall from the first steps. The box head's regression loss *rises*: it is
# averaged over every sampled RoI but only positives contribute, and as the RPN learns to
# find objects more of the sample is positive. A loss that grows is not always a model
# that gets worse; the validation metrics say which.

# %%
t = np.array([r["t"] for r in recorder.rows])
fig, (ax, ax_lr) = plt.subplots(1, 2, figsize=(11, 3.6))
for name in losses:
    y = np.array([r[name] for r in recorder.rows])
    smooth = np.convolve(y, np.ones(10) / 10, mode="valid")
    (line,) = ax.plot(t, y, lw=0.5, alpha=0.5)
    ax.plot(t[9:], smooth, lw=2, color=line.get_color(), label=name)
ax.set(xlabel="seconds", ylabel="loss", yscale="log", title="losses per step")
ax.legend(fontsize=8)
ax_lr.plot(t, [r["lr"] for r in recorder.rows])
ax_lr.axvline(budget * 60, color="k", ls=":", label="budget")
ax_lr.set(xlabel="seconds", ylabel="learning rate", title="schedule fitted to the budget")
ax_lr.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Every epoch
# `results.csv` has a row per epoch: the mean of each training loss, the same losses on the
# validation images (a training-mode pass without updates), the learning rate at the end of
# the epoch, and the validation metrics. `score` (0.5 mAP50 + 0.5 F1 at `eval.conf`) ranks
# the epochs. `results.png` draws them; the validation losses are dashed.
#
# Two minutes is a start, not a finished model: mAP50 is still climbing. The same recipe
# with five minutes and 800 images reaches about 0.85 mAP50 on held-out images (the
# README's "demo's quality bar"). F1 stays at zero while no score passes `eval.conf`
# (0.5 in this recipe): the classifier is not yet sure of anything.

# %%
with open(result.out / "results.csv") as f:
    rows = list(csv.DictReader(f))
print(f"{'epoch':>5} {'loss':>7} {'val loss':>8} {'mAP50':>6} {'F1':>6} {'score':>6} {'s':>5}")
for r in rows:
    loss = sum(float(r[k]) for k in losses)
    val = sum(float(r["val_" + k]) for k in losses)
    print(
        f"{r['epoch']:>5} {loss:7.3f} {val:8.3f} {float(r['mAP50']):6.3f} "
        f"{float(r['F1']):6.3f} {float(r['score']):6.3f} {float(r['seconds']):5.1f}"
    )
display(Image(filename=str(result.out / "results.png")))

# %% [markdown]
# ## The checkpoints kept
# After each evaluation the epoch's weights are written once, as `last.safetensors`; the
# best three epochs by score keep a name `epoch<N>.safetensors` and `best.safetensors`
# names the best. They are hard links to one file per epoch, not copies (the same inode).
# `last.state.pt` and its weights are what `frcnn train --resume` continues from.

# %%
scores = {int(r["epoch"]): float(r["score"]) for r in rows}
top3 = sorted(scores, key=scores.get, reverse=True)[:3]
print("top 3 epochs by score:", top3, "; best:", result.best_epoch)
weights = result.out / "weights"
for path in sorted(weights.iterdir()):
    print(f"{path.name:32s} inode {os.stat(path).st_ino}  {path.stat().st_size / 2**20:5.1f} MiB")

# %% [markdown]
# ## The best model, scored again
# `frcnn.evaluate` on the validation images with the best weights gives the numbers of its
# row in `results.csv` (the same evaluation, run again from the file).

# %%
again = frcnn.evaluate(result.best, work / "val", conf=0.5)
best_row = rows[result.best_epoch - 1]
print(
    f"results.csv epoch {result.best_epoch}: mAP50 {float(best_row['mAP50']):.4f}, "
    f"mAP {float(best_row['mAP']):.4f}"
)
print(f"evaluate(best):       mAP50 {again.coco['AP50']:.4f}, mAP {again.coco['AP']:.4f}")

# %% [markdown]
# ## What to change
# - `schedule.time_budget` or `schedule.epochs`: the schedule fits either (milestones and
#   warm-up are fractions of the run when left out).
# - `schedule.policy`: `cosine` (this recipe), `multistep` (x0.1 at 2/3 and 11/12, the 1x
#   recipe's shape), `step`, `constant`.
# - `eval.patience`: stop after that many evaluations without a better score.
# - `frcnn train --resume --out DIR` continues an interrupted run from `last.state.pt`.
