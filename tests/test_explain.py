"""frcnn explain: every stage drawn, the counts on the page are the model's own tensors."""

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from conftest import TINY

import frcnn
from frcnn.data.synth import write_synth
from frcnn.explainer.trace import trace_stages

PICTURES = [
    "01_input.png",
    "02_features.png",
    "03_anchors.png",
    "04_objectness.png",
    "05_proposals.png",
    "06_roi_sampling.png",
    "07_class_scores.png",
    "07_rois.png",
    "08_detections.png",
]


class _Sections(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.images = [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.ids.append(attrs["id"])
        if tag == "img":
            self.images += 1
            assert attrs["src"].startswith("data:image/")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain")
    write_synth(folder / "data", 2, size=128, seed=5, min_objects=2)
    torch.manual_seed(0)
    names = ["rectangle", "ellipse", "triangle", "cross", "ring"]  # the synthetic classes
    model = frcnn.build_model("resnet18_fpn", 6, **{**TINY, "box_score_thresh": 0.0})
    weights = frcnn.save_model(model, folder / "m.safetensors", class_names=names)
    image = sorted((folder / "data" / "images").iterdir())[0]
    return folder, weights, image


def test_every_stage_is_drawn_and_counted_from_the_model(scene, capsys):
    from frcnn.cli import main

    folder, weights, image = scene
    out = folder / "out"
    args = ["explain", "--weights", str(weights), str(image), "--labels", str(folder / "data")]
    assert main([*args, "--out", str(out)]) == 0
    assert all((out / p).stat().st_size > 1000 for p in PICTURES)
    page = _Sections()
    page.feed((out / "explain.html").read_text())
    assert page.ids == [
        "input", "features", "anchors", "objectness", "proposals", "sampling",
        "class_scores", "detections",
    ]  # fmt: skip
    assert page.images == len(PICTURES)
    counts = {k: v["counts"] for k, v in json.loads((out / "explain.json").read_text()).items()}
    # The model's own forward pass: proposals the RoI head saw, detections it returned.
    model = frcnn.load_model(weights).eval()
    seen = {}
    hook = model.roi_heads.register_forward_hook(
        lambda m, args, output: seen.update(proposals=len(args[1][0]))
    )
    from frcnn.data.images import load_image, to_tensor

    found = model([to_tensor(load_image(image))])[0]
    hook.remove()
    assert counts["proposals"]["proposals"] == seen["proposals"]
    assert counts["detections"]["detections"] == len(found["scores"]) > 0
    assert counts["class_scores"]["rois"] == seen["proposals"]
    anchors = sum(v for k, v in counts["anchors"].items() if k.endswith("_anchors"))
    assert anchors == sum(a.shape[0] for a in model.rpn.anchor_generator((128, 128), _levels()))
    printed = capsys.readouterr().out
    assert "wrote" in printed
    # the printed stage list names every picture written, and only those
    named = {
        f
        for line in printed.splitlines()
        if ": " in line
        for f in re.findall(r"\d\d_\w+\.png", line)
    }
    assert named == {p.name for p in out.glob("*.png")}


def _levels():
    return [torch.zeros(1, 1, 128 // s, 128 // s) for s in (4, 8, 16, 32, 64)]


def test_trace_detections_are_the_model_outputs_and_ground_truth_stages(scene):
    _, weights, image = scene
    from frcnn.data.images import load_image, to_tensor
    from frcnn.explainer.run import read_target

    model = frcnn.load_model(weights).eval()
    tensor = to_tensor(load_image(image))
    target = read_target(image.parent.parent, image, model.class_names)
    t = trace_stages(model, tensor, target)
    found = model([tensor])[0]
    sy, sx = t.scale
    scale = torch.tensor([sx, sy, sx, sy])
    torch.testing.assert_close(t.detections["boxes"] / scale, found["boxes"])
    torch.testing.assert_close(t.detections["scores"], found["scores"])
    assert len(t.best_anchors) == len(t.gt_boxes) > 0
    assert len(t.candidates["scores"]) == len(t.proposals) * (len(model.class_names))
    assert len(t.thresholded["scores"]) >= len(t.detections["scores"])
    assert t.sampled_rois is not None and (t.sampled_labels > 0).any()


def test_each_objects_best_anchor_by_hand(tiny_model):
    from frcnn.explainer.trace import _ground_truth_stage

    anchors = [
        torch.tensor([[0.0, 0, 10, 10], [5, 5, 15, 15]]),
        torch.tensor([[0.0, 0, 20, 20], [20, 20, 40, 40]]),
    ]
    boxes = torch.tensor([[1.0, 1, 11, 11], [22, 22, 38, 38], [4, 4, 16, 16]])
    target = {"boxes": boxes, "labels": torch.tensor([1, 1, 2])}
    # [1, 1, 11, 11]: IoU 81/119 = 0.68 with anchor 0, 36/164 = 0.22 with 1, 100/400 with 2.
    # [22, 22, 38, 38]: 256/400 = 0.64 with anchor 3, nothing else.
    # [4, 4, 16, 16]: 100/144 = 0.69 with anchor 1, 36/208 = 0.17 with 0, 144/400 with 2.
    found = _ground_truth_stage(tiny_model, anchors, anchors[1].clone(), target)
    assert found["best_anchors"].tolist() == [0, 3, 1]


def test_labels_that_do_not_hold_the_image_are_refused(scene, tmp_path):
    _, weights, image = scene
    write_synth(tmp_path / "other", 1, size=64, seed=1)
    renamed = tmp_path / "zzz.png"
    renamed.write_bytes(image.read_bytes())
    with pytest.raises(ValueError, match="no annotations for an image named zzz.png"):
        frcnn.explain(weights, renamed, labels=tmp_path / "other", out=tmp_path / "x")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(frcnn.MODELS))
def test_explain_works_for_every_registered_model(name, tmp_path):
    torch.manual_seed(0)
    model = frcnn.build_model(name, 3, min_size=128, max_size=128)
    weights = frcnn.save_model(model, tmp_path / "m.safetensors", class_names=["a", "b"])
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 140, 3), np.uint8)).save(image)
    page, stages, _ = frcnn.explain(weights, image, out=tmp_path / "out")
    assert page.exists() and len(stages) == 7  # no RoI sampling without labels


def test_an_attention_model_shows_its_attention_maps(tmp_path):
    from PIL import Image

    torch.manual_seed(0)
    model = frcnn.build_model("resnet18_fpn", 3, **{**TINY, "attention": "cbam"})
    weights = frcnn.save_model(model, tmp_path / "m.safetensors", class_names=["a", "b"])
    image = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8)).save(image)
    _, stages, trace = frcnn.explain(weights, image, out=tmp_path / "out")
    attention = {s.key: s for s in stages}["attention"]
    assert attention.counts["maps"] == len(trace.attention) == 5  # one per pyramid level
    assert all(0 <= float(m.min()) and float(m.max()) <= 1 for m in trace.attention.values())
    assert (tmp_path / "out" / "09_attention.png").exists()
