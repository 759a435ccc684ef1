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
# # 3. The RPN: objectness, proposals, NMS
#
# The region proposal network slides a small head over every pyramid level and, for each
# anchor, predicts how likely it holds an object (objectness) and how to move it onto the
# object (four deltas). The best anchors of each level are decoded into boxes, NMS removes
# near-duplicates, and the best of what remains goes to the RoI head. This tutorial
# trains a small model for a minute so that objectness means something, then follows the
# proposals through each step. About two minutes on a laptop CPU.

# %%
import shutil
from pathlib import Path

from IPython.display import Image, display

import frcnn

work = Path("t03")
shutil.rmtree(work, ignore_errors=True)
work.mkdir()
frcnn.write_synth(work / "train", 200, size=256, seed=0)
frcnn.write_synth(work / "val", 20, size=256, seed=1)

# %% [markdown]
# ## A quickly trained model
# Ninety seconds of training with the `cpu-fast` recipe (the demo's: ResNet-18 FPN,
# 256 px; `schedule.time_budget` is in minutes) on 200 synthetic images.

# %%
result = frcnn.train(
    "cpu-fast",
    **{
        "data.train": str(work / "train"),
        "data.val": str(work / "val"),
        "schedule.time_budget": 1.5,
        "run.out": str(work / "run"),
        "run.progress": False,
    },
)
print("best weights:", result.best)

# %% [markdown]
# ## Objectness
# Per level, the highest objectness over the anchors at each location. Small objects light
# up the fine levels, large ones the coarse levels: each level's anchors have one size.

# %%
image = sorted((work / "val" / "images").iterdir())[2]
page, stages, trace = frcnn.explain(result.best, image, labels=work / "val", out=work / "explain")
display(Image(filename=str(work / "explain" / "04_objectness.png")))

# %% [markdown]
# ## Proposals before and after NMS
# The best `rpn_pre_nms_top_n_test` anchors of each level are decoded and clipped; many
# describe the same object. NMS within each level keeps the most confident box of each
# cluster (IoU above 0.7 counts as the same), and the best `rpn_post_nms_top_n_test`
# remain.

# %%
counts = {s.key: s.counts for s in stages}["proposals"]
print(f"{counts['before_nms']} candidates -> {counts['proposals']} proposals after NMS")
display(Image(filename=str(work / "explain" / "05_proposals.png")))

# %% [markdown]
# ## The NMS threshold
# The same model and image with other NMS thresholds: a lower threshold merges more boxes
# (fewer, more distinct proposals); at 1.0 nothing is removed. The recipe keeps at most
# 300 proposals (`rpn_post_nms_top_n_test`), so from some threshold on the cap decides.

# %%
model = frcnn.load_model(result.best)
tensor = frcnn.read_image(image)
for threshold in (0.3, 0.5, 0.7, 0.9, 1.0):
    model.rpn.nms_thresh = threshold
    kept = len(frcnn.trace_stages(model, tensor).proposals)
    print(f"NMS IoU {threshold}: {kept} proposals")

# %% [markdown]
# How many proposals reach the box head matters for speed (each one is pooled and
# classified) and for recall (an object without a proposal cannot be found). Next: what the
# RoI head does with them (tutorial 4).
