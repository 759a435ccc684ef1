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
# # 2. Backbone and FPN feature maps
#
# The backbone turns the image into feature maps at several strides; the neck (an FPN)
# mixes them top-down so every level carries both detail and meaning, all with the same
# number of channels. This tutorial looks at what each level holds, for two backbones.
# It runs in under a minute on a laptop CPU.

# %%
import shutil
from pathlib import Path

import torch
from IPython.display import Image, display

import frcnn

work = Path("t02")
shutil.rmtree(work, ignore_errors=True)
work.mkdir()
frcnn.write_synth(work / "shapes", 4, size=256, seed=1)
image = sorted((work / "shapes" / "images").iterdir())[0]
print("registered models:", ", ".join(frcnn.MODELS))

# %% [markdown]
# ## Levels, strides and channels
# `frcnn.trace_stages` runs a model's own modules one by one and keeps every intermediate
# result. Each pyramid level halves the resolution of the one before (strides 4, 8, 16,
# 32 and a max-pooled 64) and has `fpn_channels` channels.

# %%
torch.manual_seed(0)
model = frcnn.build_model("resnet18_fpn", 6, min_size=256, max_size=256, fpn_channels=128)
tensor = frcnn.read_image(image)  # float CHW RGB in 0..1, as the detector takes it
trace = frcnn.trace_stages(model, tensor)
h, w = trace.image.shape[-2:]
for level, f in enumerate(trace.features):
    print(f"level {level}: {tuple(f.shape)}, stride {h // f.shape[-2]}")
print("parameters:", sum(p.numel() for p in model.parameters()) // 1000, "thousand")

# %% [markdown]
# ## What the levels respond to
# The page `frcnn.explain` writes shows each level's mean absolute activation over the
# image. Even untrained (random weights, as here), fine levels follow edges and texture and
# coarse levels respond to large regions: the structure comes from the architecture.
# After training (tutorial 5) the responses concentrate on objects.

# %%
weights = frcnn.save_model(model, work / "r18.safetensors", class_names=["a"] * 5)
page, stages, _ = frcnn.explain(weights, image, out=work / "explain_r18")
display(Image(filename=str(work / "explain_r18" / "02_features.png")))

# %% [markdown]
# ## Another backbone
# MobileNetV3 at 320 px is the fast model: the image is resized to 320 px and the pyramid
# has three levels, at strides 32, 32 and 64, so it trades small objects for speed. The
# same code runs on any registered model.

# %%
torch.manual_seed(0)
small = frcnn.build_model("mobilenet_v3_large_320_fpn", 6)
trace = frcnn.trace_stages(small, tensor)
h, w = trace.image.shape[-2:]
for level, f in enumerate(trace.features):
    print(f"level {level}: {tuple(f.shape)}, stride {h // f.shape[-2]}")
print("parameters:", sum(p.numel() for p in small.parameters()) // 1000, "thousand")
