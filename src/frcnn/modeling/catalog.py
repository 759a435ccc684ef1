"""The named models frcnn ships, as plain data: importing this needs no torch, so
``frcnn models`` and argument checks answer at once. A name maps to its
:class:`~frcnn.modeling.builder.ModelConfig` defaults; the backbone and neck they name are
registered by their own modules (:mod:`frcnn.modeling.backbones`, :mod:`~.necks`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .registry import MODELS

# Parameters, GFLOPs, default input size and CPU latency of each model, measured by
# benchmarks/models.py --write (frcnn models prints them without building anything).
TABLE_FILE = Path(__file__).with_name("model_table.json")


# COCO-trained weights torchvision publishes, by model: the file under COCO_WEIGHTS_BASE
# (its name ends in the first hex digits of its SHA-256, which torch.hub checks on download).
COCO_WEIGHTS_BASE = "https://download.pytorch.org/models/"
COCO_WEIGHTS = {
    "resnet50_fpn": "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
    "resnet50_fpn_v2": "fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",
    "mobilenet_v3_large_fpn": "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth",
    "mobilenet_v3_large_320_fpn": "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth",
}

# COCO's category names by the ids torchvision's COCO models predict (0 is the background;
# "N/A" marks the ten ids no COCO image uses).
COCO_CATEGORIES = [
    "__background__",
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "N/A",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "N/A",
    "backpack",
    "umbrella",
    "N/A",
    "N/A",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "N/A",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "N/A",
    "dining table",
    "N/A",
    "N/A",
    "toilet",
    "N/A",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "N/A",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
]


# ``coco:NAME`` names the COCO weights of model NAME wherever a model file is taken.
COCO_PREFIX = "coco:"


def is_coco(weights: object) -> bool:
    """Whether ``weights`` names published COCO weights (``coco:NAME``)."""
    return isinstance(weights, (str, os.PathLike)) and os.fspath(weights).startswith(COCO_PREFIX)


def starts_from_coco(weights: str | None) -> bool:
    """Whether a training run's ``model.weights`` are COCO's: ``coco`` (the trained model's)
    or ``coco:NAME``."""
    return weights == "coco" or is_coco(weights)


def model_table() -> dict:
    """The stored measurements: ``{"machine": ..., "models": {name: row}}`` (empty when the
    file is missing)."""
    if not TABLE_FILE.is_file():
        return {"models": {}}
    return json.loads(TABLE_FILE.read_text())


for _depth in (18, 34, 50, 101):
    MODELS.register(f"resnet{_depth}_fpn", {"backbone": f"resnet{_depth}", "neck": "fpn"})

# torchvision's fasterrcnn_resnet50_fpn_v2: BatchNorm in the FPN, two shared RPN convs, a box
# head of four conv + BatchNorm blocks and one fully connected layer.
MODELS.register(
    "resnet50_fpn_v2",
    {"backbone": "resnet50", "neck": "fpn_bn", "rpn_conv_depth": 2, "box_head": "4conv1fc"},
)

# timm bodies (stage outputs at strides 4-32) under the same FPN as a ResNet.
for _name, _backbone in (
    ("efficientnet_b3_fpn", "efficientnet_b3"),
    ("swin_t_fpn", "swin_t"),
    ("swin_s_fpn", "swin_s"),
):
    MODELS.register(_name, {"backbone": _backbone, "neck": "fpn"})

# CSP bodies under the SPP + FPN + PAN neck.
MODELS.register("cspdarknet53_pan", {"backbone": "cspdarknet53", "neck": "pan"})
MODELS.register("cspmirrornet_pan", {"backbone": "cspmirrornet", "neck": "pan"})

# torchvision's fasterrcnn_mobilenet_v3_large_fpn: two stride-32 levels and a pooled one,
# five anchor sizes on each.
_MOBILENET = {
    "backbone": "mobilenet_v3_large",
    "neck": "fpn",
    "anchor_sizes": [[32, 64, 128, 256, 512]] * 3,
    "aspect_ratios": [[0.5, 1.0, 2.0]] * 3,
}
MODELS.register("mobilenet_v3_large_fpn", dict(_MOBILENET))
# ... and its 320 px variant for fast CPU inference.
MODELS.register(
    "mobilenet_v3_large_320_fpn",
    {
        **_MOBILENET,
        "min_size": 320,
        "max_size": 640,
        "rpn_pre_nms_top_n_test": 150,
        "rpn_post_nms_top_n_test": 150,
        "rpn_score_thresh": 0.05,
    },
)
