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
# # 4. The RoI head: RoIAlign, level mapping, sampling, class-specific regression
#
# The RoI head looks at each proposal: it pools a fixed 7 x 7 grid of features from the
# pyramid level that suits the proposal's size (RoIAlign), runs two fully connected layers,
# and predicts a probability per class and, per class, four deltas that move the proposal
# onto an object of that class. In training it learns from a balanced sample of proposals.
# A model trained for a minute shows each step. About two minutes on a laptop CPU.

# %%
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Image, display
from torchvision.ops import roi_align

import frcnn

work = Path("t04")
shutil.rmtree(work, ignore_errors=True)
work.mkdir()
frcnn.write_synth(work / "train", 200, size=256, seed=0)
frcnn.write_synth(work / "val", 20, size=256, seed=1)
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
model = frcnn.load_model(result.best)
image = sorted((work / "val" / "images").iterdir())[2]
tensor = frcnn.read_image(image)
trace = frcnn.trace_stages(model, tensor)
print(len(trace.proposals), "proposals,", len(trace.features), "pyramid levels")

# %% [markdown]
# ## Level mapping
# A proposal is pooled from the level whose stride suits its size: level
# `floor(4 + log2(sqrt(w * h) / 224))`, clamped to the pooled levels (P2-P5: strides 4 to
# 32). A 224 px box comes from P4 (stride 16), one of 56 px from P2 (stride 4), so every
# proposal covers about the same number of feature cells.

# %%
w = trace.proposals[:, 2] - trace.proposals[:, 0]
h = trace.proposals[:, 3] - trace.proposals[:, 1]
level = torch.floor(4 + torch.log2(torch.sqrt(w * h) / 224 + 1e-6)).clamp(2, 5).long()
for k in range(2, 6):
    print(f"P{k} (stride {2**k}): {int((level == k).sum())} proposals")

# %% [markdown]
# ## RoIAlign
# The most confident proposal, pooled from its level into 7 x 7 cells: each cell averages
# bilinearly interpolated samples (no rounding of coordinates, unlike the older RoIPool).
# Shown: the image region, and the mean over channels of the pooled features.

# %%
best = int(trace.class_scores[:, 1:].max(1).values.argmax())
box = trace.proposals[best]
k = int(level[best])
feature = trace.features[k - 2][None]  # pyramid level P{k}, stride 2**k
pooled = roi_align(feature, [box[None]], output_size=7, spatial_scale=1 / 2**k, sampling_ratio=2)
x1, y1, x2, y2 = box.round().int().tolist()
fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
axes[0].imshow(trace.image.permute(1, 2, 0)[y1:y2, x1:x2])
axes[0].set_title(f"proposal {best}, {x2 - x1}x{y2 - y1} px")
axes[1].imshow(pooled[0].mean(0), cmap="inferno")
axes[1].set_title(f"pooled from P{k}: 7x7")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Sampling in training
# For training, the proposals (with the objects added) are matched to the objects by IoU:
# at least 0.5 is a positive with that object's class, below 0.5 background; a sample of
# `box_batch_size_per_image` RoIs (64 in this recipe), at most a quarter positive, is what
# the head learns from. `frcnn.explain` with the labels draws that sample.

# %%
page, stages, _ = frcnn.explain(result.best, image, labels=work / "val", out=work / "explain")
print({s.key: s.counts for s in stages}["sampling"])
display(Image(filename=str(work / "explain" / "06_roi_sampling.png")))

# %% [markdown]
# ## Class scores and class-specific regression
# The head gives each RoI a probability per class (softmax over background and the
# classes) and a box per class: every (RoI, class) pair is a candidate detection. Those
# above the score threshold go through NMS per class; the rest of the model's output is
# what survives.

# %%
display(Image(filename=str(work / "explain" / "07_class_scores.png")))
counts = {s.key: s.counts for s in stages}["detections"]
print(
    f"{counts['pairs']} (RoI, class) pairs = {len(trace.proposals)} RoIs x "
    f"{len(model.class_names)} classes; {counts['above_threshold']} above the threshold; "
    f"{counts['detections']} after per-class NMS"
)
display(Image(filename=str(work / "explain" / "08_detections.png")))
