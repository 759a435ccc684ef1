"""Every stage of a detector on one image, recorded: what ``frcnn explain`` draws.

The model's own modules run one after another, exactly as its forward pass runs them
(transform, backbone, RPN head and anchors, proposal selection, RoI pooling and head,
post-processing), and each intermediate result is kept. Stages that need ground truth
(anchor labels, RoI sampling) use the model's own matcher and sampler. Alternative views
("before NMS", "before the score threshold") rerun the model's own selection with that
step switched off. Everything is in the model's input pixels (the resized image).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..boxes.ops import box_iou
from ..modeling.layers.attention import SpatialAttention
from ..modeling.proposals.rpn import flatten_level


@dataclass
class Trace:
    """One image's stages. Boxes are xyxy in the resized image's pixels."""

    image: Tensor  # the padded input, RGB 0..1 (normalisation undone), [3, H, W]
    image_size: tuple[int, int]  # the resized image inside the padding
    scale: tuple[float, float]  # resized / original, (y, x)
    features: list[Tensor]  # per pyramid level [C, H_l, W_l]
    anchors: list[Tensor]  # per level [A_l, 4]
    anchors_per_location: list[int]
    objectness: list[Tensor]  # per level, probability [A, H_l, W_l]
    proposals_before_nms: Tensor
    proposal_scores_before_nms: Tensor
    proposals: Tensor  # what the RoI head sees
    class_scores: Tensor  # [P, K] softmax over background + classes, per proposal
    candidates: dict[str, Tensor]  # every (proposal, class) pair, no threshold, no NMS
    thresholded: dict[str, Tensor]  # above the score threshold, before NMS
    detections: dict[str, Tensor]  # the model's output (in resized pixels)
    class_names: list[str] | None = None
    gt_boxes: Tensor | None = None  # resized
    gt_labels: Tensor | None = None
    anchor_labels: list[Tensor] | None = None  # per level: 1 positive, 0 negative, -1 ignored
    best_anchors: Tensor | None = None  # per object: index into the concatenated anchors
    sampled_rois: Tensor | None = None  # RoI sampling: boxes and their class (0 background)
    sampled_labels: Tensor | None = None
    attention: dict[str, Tensor] = field(default_factory=dict)


def _rpn_stage(model: torch.nn.Module, batch: Tensor, features: list, sizes: list) -> dict:
    """Anchors, objectness per level, the candidates before NMS and the proposals after."""
    rpn = model.rpn
    objectness, deltas = rpn.head(features)
    anchors = rpn.anchor_generator(tuple(batch.shape[-2:]), features)
    flat_obj = [flatten_level(o, 1).squeeze(-1) for o in objectness]
    flat_deltas = [flatten_level(d, 4) for d in deltas]
    # select_proposals' steps one by one, keeping the candidates NMS starts from
    boxes, scores, levels = rpn.top_anchors(flat_obj, flat_deltas, anchors)
    before, before_scores, before_levels = rpn.candidates(boxes[0], scores[0], levels, sizes[0])
    proposals = rpn.best_after_nms(before, before_scores, before_levels)
    return {
        "anchors": anchors,
        "objectness": [torch.sigmoid(o[0]) for o in objectness],
        "proposals": proposals,
        "before": before,
        "before_scores": before_scores,
    }


def _head_stage(model: torch.nn.Module, features: list, proposals: Tensor, sizes: list) -> dict:
    """Class scores per proposal; detections with every pair, above the threshold before
    NMS, and as the model returns them."""
    heads = model.roi_heads
    class_logits, box_deltas = heads.predictor(heads.box_head(heads.pooler(features, [proposals])))
    every = 10**9
    views = {
        name: heads.postprocess(class_logits, box_deltas, [proposals], sizes, limits)[0]
        for name, limits in (
            ("candidates", (-1.0, 1.0, every)),  # every (proposal, class) pair
            ("thresholded", (heads.score_thresh, 1.0, every)),  # no NMS, no cut
        )
    }
    views["class_scores"] = torch.softmax(class_logits, -1)
    return views


def _detections(model: torch.nn.Module, image: Tensor, size: tuple[int, int]) -> dict:
    """What the model detects on ``image``, by the one inference path, in the pixels of the
    resized image of ``size`` (height, width) the other stages are drawn on."""
    from ..inference.detectors import ModelDetector
    from ..inference.predict import detect

    found = detect(ModelDetector(model), [image])[0]
    sy, sx = size[0] / image.shape[-2], size[1] / image.shape[-1]
    scale = torch.tensor([sx, sy, sx, sy], dtype=found["boxes"].dtype)
    return {**found, "boxes": found["boxes"] * scale.to(found["boxes"].device)}


def _ground_truth_stage(
    model: torch.nn.Module, anchors: list, proposals: Tensor, target: dict
) -> dict:
    """Anchor labels by the RPN's matcher (per level), each object's best anchor, and the
    RoIs the box head's sampler would train on (seeded: sampling is random)."""
    flat = torch.cat(anchors)
    iou = box_iou(target["boxes"], flat)
    _, labels = model.rpn.matcher(iou)
    counts = [len(a) for a in anchors]
    best = iou.argmax(1) if len(target["boxes"]) else torch.zeros(0, dtype=torch.int64)
    torch.manual_seed(0)
    rois, roi_labels, _ = model.roi_heads.sample_proposals([proposals], [target])
    return {
        "anchor_labels": list(labels.long().split(counts)),
        "best_anchors": best,
        "sampled_rois": rois[0],
        "sampled_labels": roi_labels,
    }


@contextlib.contextmanager
def attention_maps(model: torch.nn.Module) -> Iterator[dict[str, Tensor]]:
    """The spatial weights (0..1, [H, W]) each spatial-attention block of ``model`` applies
    while the block runs, by module name (empty for a model without attention)."""
    maps: dict[str, Tensor] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, SpatialAttention):

            def keep(_m, _args, output, name=name):
                maps[name] = torch.sigmoid(output[0, 0]).float()

            handles.append(module.conv.register_forward_hook(keep))
    try:
        yield maps
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def trace_stages(
    model: torch.nn.Module, image: Tensor, target: dict[str, Tensor] | None = None
) -> Trace:
    """Run ``model`` (eval mode) on one CHW image in 0..1, keeping every stage (see the
    module doc); ``target`` (``boxes`` xyxy in the image's pixels, ``labels`` 1..K) adds the
    stages that need ground truth."""
    model.eval()
    batch, sizes, targets = model.transform([image], [target] if target else None)
    if getattr(model, "channels_last", False):
        batch = batch.contiguous(memory_format=torch.channels_last)
    with attention_maps(model) as attention:
        features = list(model.backbone(batch))
    rpn = _rpn_stage(model, batch, features, sizes)
    head = _head_stage(model, features, rpn["proposals"], sizes)
    mean, std = model.transform.mean.view(-1, 1, 1), model.transform.std.view(-1, 1, 1)
    trace = Trace(
        image=(batch[0].float() * std + mean).clamp(0, 1),
        image_size=tuple(int(v) for v in sizes[0]),
        scale=(sizes[0][0] / image.shape[-2], sizes[0][1] / image.shape[-1]),
        features=[f[0] for f in features],
        anchors=rpn["anchors"],
        anchors_per_location=model.rpn.anchor_generator.num_anchors_per_location(),
        objectness=rpn["objectness"],
        proposals_before_nms=rpn["before"],
        proposal_scores_before_nms=rpn["before_scores"],
        proposals=rpn["proposals"],
        class_scores=head["class_scores"],
        candidates=head["candidates"],
        thresholded=head["thresholded"],
        detections=_detections(model, image, tuple(int(v) for v in sizes[0])),
        class_names=getattr(model, "class_names", None),
        attention=attention,
    )
    if targets:
        trace.gt_boxes, trace.gt_labels = targets[0]["boxes"], targets[0]["labels"]
        for key, value in _ground_truth_stage(
            model, rpn["anchors"], rpn["proposals"], targets[0]
        ).items():
            setattr(trace, key, value)
    return trace
