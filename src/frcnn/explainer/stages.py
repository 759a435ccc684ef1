"""One picture per stage of a :class:`~frcnn.explainer.trace.Trace`, with what it shows in
words and in numbers (the counts come from the traced tensors themselves)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .draw import (
    BLUE,
    DRAWN,
    GREEN,
    RED,
    WHITE,
    YELLOW,
    boxes_panel,
    detection_panel,
    heat,
    save_row,
    strongest,
    to_image,
)
from .trace import Trace


@dataclass
class Stage:
    """A drawn stage: its picture file, title, explanation and counts."""

    key: str
    title: str
    text: str
    file: str
    counts: dict[str, int] = field(default_factory=dict)
    extra: tuple[str, ...] = ()  # further pictures of the stage, shown beside its own

    @property
    def files(self) -> tuple[str, ...]:
        """Every picture file the stage wrote."""
        return (self.file, *self.extra)


def _input(t: Trace, base, out: Path) -> Stage:
    h, w = t.image_size
    panel = boxes_panel(base, [[0, 0, w, h]], [GREEN], f"input {h}x{w}, padded")
    save_row([panel], out / "01_input.png")
    text = (
        f"The image resized by {t.scale[1]:.3f} (width) and {t.scale[0]:.3f} (height) to "
        f"{h}x{w} (green), normalised and padded to {base.height}x{base.width} for the "
        "backbone's strides. Every later picture is in these pixels."
    )
    return Stage("input", "Input", text, "01_input.png", {"height": h, "width": w})


def _features(t: Trace, base, out: Path) -> Stage:
    panels = [heat(base, f.abs().mean(0)).resize(base.size) for f in t.features]
    captioned = [
        boxes_panel(p, [], [], f"level {i}: {f.shape[0]}x{f.shape[1]}x{f.shape[2]}")
        for i, (p, f) in enumerate(zip(panels, t.features, strict=True))
    ]
    save_row(captioned, out / "02_features.png")
    text = (
        "Mean absolute activation of each pyramid level the neck hands to the RPN and the "
        "RoI head (bright: strong response), finest level first."
    )
    return Stage(
        "features",
        "Backbone and neck feature maps",
        text,
        "02_features.png",
        {"levels": len(t.features)},
    )


def _anchors(t: Trace, base, out: Path) -> Stage:
    panels, counts = [], {}
    offset = 0
    for level, anchors in enumerate(t.anchors):
        if t.anchor_labels is None:  # the anchor shapes at the image's centre
            a = t.anchors_per_location[level]
            centre = (len(anchors) // a) // 2 * a
            shown, colours = anchors[centre : centre + a], [BLUE] * a
            caption = f"level {level}: {len(anchors)} anchors, {a} per location"
        else:
            labels = t.anchor_labels[level]
            pos, ign = torch.where(labels == 1)[0], torch.where(labels == -1)[0]
            neg = torch.where(labels == 0)[0]
            neg = neg[torch.randperm(len(neg), generator=torch.Generator().manual_seed(0))[:20]]
            best = (
                t.best_anchors[
                    (t.best_anchors >= offset) & (t.best_anchors < offset + len(anchors))
                ]
                - offset
            )
            shown = torch.cat([anchors[neg], anchors[ign], anchors[pos], anchors[best], t.gt_boxes])
            colours = [RED] * len(neg) + [YELLOW] * len(ign) + [GREEN] * len(pos)
            colours += [BLUE] * len(best) + [WHITE] * len(t.gt_boxes)
            caption = f"level {level}: {len(pos)} pos, {len(ign)} ignored, {len(best)} best"
            counts[f"level{level}_positive"] = len(pos)
            counts[f"level{level}_ignored"] = len(ign)
            counts[f"level{level}_best"] = len(best)
        counts[f"level{level}_anchors"] = len(anchors)
        panels.append(boxes_panel(base, shown, colours, caption))
        offset += len(anchors)
    save_row(panels, out / "03_anchors.png")
    text = (
        "Anchors per pyramid level. Without ground truth: the anchor shapes of one location "
        "at the centre. With it (--labels): positives (green, IoU above the RPN's high "
        "threshold or an object's best), ignored (yellow, between the thresholds), 20 of the "
        "negatives (red), each object's best anchor (blue) and the objects (white)."
    )
    return Stage("anchors", "Anchors", text, "03_anchors.png", counts)


def _objectness(t: Trace, base, out: Path) -> Stage:
    panels = []
    for level, prob in enumerate(t.objectness):
        best = prob.amax(0)  # the strongest anchor at each location
        caption = f"level {level}: max {float(best.max()):.2f}"
        panels.append(boxes_panel(heat(base, best), [], [], caption))
    save_row(panels, out / "04_objectness.png")
    text = (
        "RPN objectness per level: at each location the highest probability over its "
        "anchors that an object is there (each level stretched to its own range)."
    )
    return Stage(
        "objectness", "RPN objectness", text, "04_objectness.png", {"levels": len(t.objectness)}
    )


def _proposals(t: Trace, base, out: Path) -> Stage:
    before, after = t.proposals_before_nms, t.proposals
    top = strongest(t.proposal_scores_before_nms)
    panels = [
        boxes_panel(base, before[top], [RED] * len(top), f"before NMS: {len(before)}"),
        boxes_panel(
            base, after[:DRAWN], [GREEN] * min(DRAWN, len(after)), f"after NMS: {len(after)}"
        ),
    ]
    save_row(panels, out / "05_proposals.png")
    text = (
        f"The best anchors of each level decoded into boxes, clipped, tiny ones removed: "
        f"{len(before)} candidates (the {min(DRAWN, len(before))} most confident drawn). "
        f"NMS within each level and the best of them leave {len(after)} proposals for the "
        f"RoI head (the first {min(DRAWN, len(after))} drawn)."
    )
    counts = {"before_nms": len(before), "proposals": len(after)}
    return Stage("proposals", "Proposals before and after NMS", text, "05_proposals.png", counts)


def _sampling(t: Trace, base, out: Path) -> Stage | None:
    if t.sampled_rois is None:
        return None
    pos, neg = torch.where(t.sampled_labels > 0)[0], torch.where(t.sampled_labels == 0)[0]
    shown = torch.cat([t.sampled_rois[neg], t.sampled_rois[pos], t.gt_boxes])
    colours = [RED] * len(neg) + [GREEN] * len(pos) + [WHITE] * len(t.gt_boxes)
    caption = f"{len(pos)} positive, {len(neg)} negative RoIs"
    save_row([boxes_panel(base, shown, colours, caption)], out / "06_roi_sampling.png")
    text = (
        "What the box head would train on for this image: the proposals plus the objects, "
        "matched by IoU, sampled to the configured size and positive fraction: positives "
        "(green, their object's class and box are the targets), negatives (red, background)."
    )
    counts = {"positive": len(pos), "negative": len(neg)}
    return Stage("sampling", "RoI sampling", text, "06_roi_sampling.png", counts)


def _class_scores(t: Trace, base, out: Path) -> Stage:
    from ..evaluation.plots import plt

    fg = t.class_scores[:, 1:]
    top = strongest(fg.max(1).values if fg.numel() else fg.new_zeros(0), 20)
    names = ["background"] + [f"class {k}" for k in range(1, t.class_scores.shape[1])]
    if t.class_names:
        names = ["background", *t.class_names]
    fig, ax = plt.subplots(figsize=(1.2 + 0.5 * len(names), 1.2 + 0.3 * max(1, len(top))))
    ax.imshow(t.class_scores[top].numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(top)), [f"RoI {int(i)}" for i in top])
    ax.set_title("class probabilities of the 20 most confident RoIs")
    fig.tight_layout()
    fig.savefig(out / "07_class_scores.png", dpi=100)
    plt.close(fig)
    texts = [f"RoI {int(i)}" for i in top]
    row = [boxes_panel(base, t.proposals[top], [BLUE] * len(top), "those RoIs", texts)]
    save_row(row, out / "07_rois.png")
    text = (
        "Each proposal pooled by RoIAlign (from the level its size maps to), through the box "
        "head: a probability per class, background included. The rows are the 20 proposals "
        "with the highest foreground probability, drawn beside."
    )
    return Stage(
        "class_scores",
        "Class scores per RoI",
        text,
        "07_class_scores.png",
        {"rois": len(t.class_scores)},
        extra=("07_rois.png",),
    )


def _detections(t: Trace, base, out: Path) -> Stage:
    views = (
        ("every (RoI, class) pair", t.candidates),
        ("above the score threshold", t.thresholded),
        ("after per-class NMS", t.detections),
    )
    panels = [
        detection_panel(base, found, t.class_names, f"{name}: {len(found['scores'])}", DRAWN)
        for name, found in views
    ]
    save_row(panels, out / "08_detections.png")
    n = [len(found["scores"]) for _, found in views]
    text = (
        f"Each RoI's box refined for each class (class-specific regression): {n[0]} pairs; "
        f"{n[1]} pass the score threshold; per-class NMS and the cap on detections leave "
        f"{n[2]}, the model's output (at most {DRAWN} drawn per panel, the strongest)."
    )
    counts = {"pairs": n[0], "above_threshold": n[1], "detections": n[2]}
    return Stage("detections", "Detections", text, "08_detections.png", counts)


def _attention(t: Trace, base, out: Path) -> Stage | None:
    if not t.attention:
        return None
    panels = [
        boxes_panel(heat(base, m, alpha=0.7), [], [], f"{name}: {m.shape[0]}x{m.shape[1]}")
        for name, m in t.attention.items()
    ]
    save_row(panels, out / "09_attention.png")
    text = (
        "The weight each spatial-attention block (CBAM or spatial) gives every position of "
        "its pyramid level: features are multiplied by it, so dark regions are damped."
    )
    counts = {"maps": len(t.attention)}
    return Stage("attention", "Attention maps", text, "09_attention.png", counts)


def draw_stages(t: Trace, out: Path) -> list[Stage]:
    """Every stage's picture in ``out``; the stages in order (RoI sampling only with
    ground truth)."""
    out.mkdir(parents=True, exist_ok=True)
    base = to_image(t.image)
    steps = (
        _input,
        _features,
        _attention,
        _anchors,
        _objectness,
        _proposals,
        _sampling,
        _class_scores,
        _detections,
    )
    return [s for s in (step(t, base, out) for step in steps) if s is not None]
