"""How tests/data/model_v0_1_0.safetensors.gz was made, with frcnn 0.1.0 (commit 4499667); kept for the record, not run by the tests."""

import gzip
import json
import shutil

import torch

import frcnn
from frcnn.demo import DEMO_MODEL, two_object_image

assert frcnn.__version__ == "0.1.0"
torch.manual_seed(0)
model = frcnn.build_model("resnet18_fpn", 3, **DEMO_MODEL)
# Zero the 3x3 convs of the residual stages so the file compresses; the stem, downsample
# paths, FPN, RPN and heads stay random, so detections are plentiful and non-trivial.
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.startswith("backbone.body.layer") and (".conv1." in name or ".conv2." in name):
            p.zero_()
model.eval()
path = frcnn.save_model(model, "/tmp/model_v0_1_0.safetensors", class_names=["rectangle", "disc"])
with (
    open(path, "rb") as src,
    gzip.GzipFile("tests/data/model_v0_1_0.safetensors.gz", "wb", mtime=0) as dst,
):
    shutil.copyfileobj(src, dst)
loaded = frcnn.load_model(path)
img, _ = two_object_image()
g = torch.Generator().manual_seed(1)
noise = torch.rand(3, 150, 200, generator=g)
with torch.no_grad():
    dets = loaded([img, noise])
out = [{k: v.tolist() for k, v in d.items()} for d in dets]
json.dump(
    {"frcnn": "0.1.0", "images": ["two_object_image", "rand(3,150,200) seed 1"], "detections": out},
    open("tests/data/model_v0_1_0.expected.json", "w"),
)
print([len(d["boxes"]) for d in out], out[0]["scores"][:3])
