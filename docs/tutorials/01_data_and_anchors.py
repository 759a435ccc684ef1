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
# # 1. Data, formats, checks and anchor targets
#
# A detector learns from boxes, and a Faster R-CNN turns each box into *anchor targets*
# before anything is learned: which of its thousands of anchors should say "object here".
# This tutorial makes a small dataset, moves it between formats, lets the checks find and
# fix broken boxes, fits anchors to the data, and draws which anchors become positives.
# It runs in about a minute on a laptop CPU.

# %%
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from IPython.display import Image, display

import frcnn

work = Path("t01")
shutil.rmtree(work, ignore_errors=True)  # a fresh start on every run
work.mkdir()

# %% [markdown]
# ## A dataset
# `frcnn.write_synth` draws shapes (rectangles, ellipses, triangles, crosses, rings) on
# textured backgrounds and writes COCO JSON: images in `images/`, boxes in
# `annotations.json`. Any COCO, YOLO, Pascal VOC or CSV folder reads the same way.

# %%
frcnn.write_synth(work / "shapes", 40, size=256, seed=0)
ds = frcnn.read_dataset(work / "shapes")
print(ds.format, len(ds), "images,", ds.num_boxes, "boxes, classes", ds.class_names)
counts = ds.instance_counts()[1:].tolist()  # index 0 is the background
print("instances per class:", dict(zip(ds.class_names, counts, strict=True)))

# %% [markdown]
# ## Formats
# `frcnn.write_dataset` checks a dataset and writes it in another format. YOLO stores
# normalised centres and sizes per image, VOC an XML file per image; the boxes survive the
# round trip (to a fraction of a pixel: YOLO keeps six decimals).

# %%
for to in ("yolo", "voc"):
    frcnn.write_dataset({"train": ds}, work / to, to)
    back = frcnn.read_dataset(work / to)
    a = np.concatenate([r.boxes for r in sorted(ds.images, key=lambda r: r.file_name)])
    b = np.concatenate([r.boxes for r in sorted(back.images, key=lambda r: r.file_name)])
    print(f"{to}: {back.num_boxes} boxes back, largest difference {np.abs(a - b).max():.4f} px")

# %% [markdown]
# ## Checks
# Real annotations have mistakes. Break a copy on purpose: a box that runs off the image,
# one with its corners swapped, and one with no area. `frcnn.check_dataset` fixes what
# can be fixed, drops what cannot, and counts both, naming the image and the box.

# %%
coco = json.loads((work / "shapes" / "annotations.json").read_text())
anns = coco["annotations"]
anns[0]["bbox"] = [200, 200, 120, 120]  # runs 64 px past the right and bottom edges
x, y, w, h = anns[1]["bbox"]
anns[1]["bbox"] = [x + w, y + h, -w, -h]  # corners swapped (negative size)
anns[2]["bbox"] = [10, 10, 0, 0]  # no area
(work / "broken.json").write_text(json.dumps(coco))
broken = frcnn.read_dataset(work / "broken.json", images=work / "shapes")
clean, report = frcnn.check_dataset(broken)
print("\n".join(report.summary_lines()))

# %% [markdown]
# ## Anchors fitted to the data
# Anchors are the boxes the RPN starts from: a few sizes and aspect ratios at every
# position of every pyramid level. `frcnn.fit_anchors` clusters the data's box sizes (as
# the model will see them, after resizing) and proposes one size per level and shared
# ratios.

# %%
fit = frcnn.fit_anchors(clean, min_size=256, max_size=256)
print("box size clusters (w, h):", fit.clusters.round(0).tolist())
print("anchor sizes per level:", fit.anchor_sizes, "ratios:", fit.aspect_ratios[0])
print(f"mean best-anchor IoU: default anchors {fit.iou_default:.3f}, fitted {fit.iou_fitted:.3f}")
print("to train with them:", fit.model_args())

# %% [markdown]
# ## Anchor targets
# Which anchors does the RPN train to call "object"? `frcnn.explain` runs a model on one
# image and, given the labels, draws per level: positives (green: IoU with an object above
# 0.7, or an object's best anchor), ignored ones (yellow: between 0.3 and 0.7), a sample of
# negatives (red) and each object's best anchor (blue). The model here is untrained: the
# targets depend only on the anchors and the boxes.

# %%
torch.manual_seed(0)
model = frcnn.build_model("resnet18_fpn", len(ds.class_names) + 1, min_size=256, max_size=256)
weights = frcnn.save_model(model, work / "untrained.safetensors", class_names=ds.class_names)
image = sorted((work / "shapes" / "images").iterdir())[1]
labels = work / "shapes"
page, stages, trace = frcnn.explain(weights, image, labels=labels, out=work / "explain")
anchors = {s.key: s for s in stages}["anchors"]
print({k: v for k, v in anchors.counts.items() if "positive" in k or "best" in k})
display(Image(filename=str(work / "explain" / anchors.file)))

# %% [markdown]
# Small objects find their positives on the fine levels (stride 4 and 8), large ones on the
# coarse levels; an object whose size falls between the anchor sizes may have only its one
# best anchor as a positive. That is what `fit_anchors` is for. Next: what the backbone and
# the feature pyramid make of the image (tutorial 2).
