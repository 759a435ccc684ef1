"""Ensembles, test-time augmentation and the NMS-cluster mean merge: hand-computed fusion,
a model fused with itself, TTA with only the identity view."""

import json
import math

import pytest
import torch

import frcnn
from frcnn.boxes.merge import merge_clusters
from frcnn.inference.ensemble import MergedDetector, MergeOptions, View, fuse, run_view, tta_views
from frcnn.modeling.transform import ImageTransform


def _det(boxes, scores, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def test_merge_clusters_gives_the_score_weighted_mean_by_hand():
    boxes = torch.tensor(
        [[0, 0, 10, 10], [2, 0, 12, 10], [20, 20, 30, 30], [1, 0, 11, 10]], dtype=torch.float32
    )
    scores = torch.tensor([0.9, 0.6, 0.8, 0.5])
    labels = torch.tensor([1, 1, 1, 2])  # the last overlaps the first but is another class
    keep = torch.tensor([0, 2, 3])
    merged = merge_clusters(boxes, scores, labels, keep, 0.5)
    # (0.9 * [0, 0, 10, 10] + 0.6 * [2, 0, 12, 10]) / 1.5 = [0.8, 0, 10.8, 10]
    expected = torch.tensor([[0.8, 0, 10.8, 10], [20, 20, 30, 30], [1, 0, 11, 10]])
    torch.testing.assert_close(merged, expected)
    assert merge_clusters(boxes, scores, labels, keep[:0], 0.5).shape == (0, 4)


def test_merge_mean_in_the_model_keeps_scores_and_labels(tiny_model):
    tiny_model.eval()
    image = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(0))
    plain = tiny_model([image])[0]
    tiny_model.roi_heads.merge = "mean"
    merged = tiny_model([image])[0]
    torch.testing.assert_close(merged["scores"], plain["scores"])
    assert torch.equal(merged["labels"], plain["labels"])
    assert merged["boxes"].shape == plain["boxes"].shape
    with pytest.raises(ValueError, match="box merge 'median'"):
        frcnn.build_model("resnet18_fpn", 3, box_merge="median")


def test_wbf_of_two_runs_by_hand():
    a = _det([[0, 0, 10, 10]], [0.8], [1])
    b = _det([[2, 0, 12, 10]], [0.4], [1])  # IoU 2/3 with a: one cluster
    fused = fuse([a, b], (100, 100), MergeOptions(), [1.0, 1.0], 100)
    # box: score-weighted mean (0.8 a + 0.4 b) / 1.2; score: the mean of the two votes
    torch.testing.assert_close(fused["boxes"], torch.tensor([[2 / 3, 0, 32 / 3, 10]]))
    torch.testing.assert_close(fused["scores"], torch.tensor([0.6]))
    nms = fuse([a, b], (100, 100), MergeOptions("nms", 0.5), [1.0, 1.0], 100)
    torch.testing.assert_close(nms["boxes"], a["boxes"])
    empty = fuse([_det([], [], []), _det([], [], [])], (100, 100), MergeOptions(), [1, 1], 100)
    assert empty["boxes"].shape == (0, 4)


def test_a_model_fused_with_itself_gives_its_own_detections(tiny_model):
    tiny_model.eval()
    images = [torch.rand(3, 128, 96, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    plain = tiny_model(images)
    for method in ("wbf", "nms", "nmw"):
        fused = MergedDetector([tiny_model, tiny_model], options=MergeOptions(method))(images)
        for p, f in zip(plain, fused, strict=True):
            order = torch.argsort(p["scores"], descending=True, stable=True)
            assert len(f["boxes"]) == len(p["boxes"]) > 0, method
            torch.testing.assert_close(f["scores"], p["scores"][order], atol=1e-5, rtol=0)
            torch.testing.assert_close(f["boxes"], p["boxes"][order], atol=1e-3, rtol=0)
            assert torch.equal(f["labels"], p["labels"][order])


def test_tta_with_only_the_identity_view_is_plain_prediction(tiny_model):
    tiny_model.eval()
    image = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(1))
    plain = tiny_model([image])[0]
    same = MergedDetector([tiny_model], [View()])([image])[0]
    for key in plain:
        assert torch.equal(plain[key], same[key])
    assert tta_views((1.0, 1.2)) == [View(), View(flip=True), View(scale=1.2)]


class _Stub:
    """A model that records the input it saw and returns one fixed box."""

    def __init__(self):
        self.transform = ImageTransform(100, 200)
        self.seen = []

    def eval(self):
        return self

    def __call__(self, images):
        self.seen.append((images[0].clone(), self.transform.min_size, self.transform.max_size))
        return [_det([[10, 5, 30, 20]], [0.9], [1])]


def test_views_flip_back_and_rescale_then_restore():
    stub = _Stub()
    image = torch.arange(2 * 100.0).reshape(1, 2, 100).expand(3, 2, 100)
    out = run_view(stub, [image], View(flip=True))[0]
    # A box at x 10..30 in the flipped 100-wide image is at 70..90 in the original.
    torch.testing.assert_close(out["boxes"], torch.tensor([[70.0, 5, 90, 20]]))
    assert torch.equal(stub.seen[0][0], image.flip(-1))
    run_view(stub, [image], View(scale=1.2))
    assert stub.seen[1][1:] == ((120,), 240)
    assert (stub.transform.min_size, stub.transform.max_size) == ((100,), 200)


def test_a_rescaled_view_shares_the_model_and_changes_nothing_in_it(tiny_model):
    from frcnn.inference.ensemble import rescaled

    tiny_model.eval()
    view = rescaled(tiny_model, 1.5)
    assert view.backbone is tiny_model.backbone and view.roi_heads is tiny_model.roi_heads
    assert (view.transform.min_size, view.transform.max_size) == ((192,), 192)
    assert (view.config["min_size"], view.config["max_size"]) == ((192,), 192)
    assert (tiny_model.transform.min_size, tiny_model.transform.max_size) == ((128,), 128)
    assert tiny_model.config["min_size"] == 128 and not view.transform.training
    assert rescaled(tiny_model, 1.0) is tiny_model


def test_ensemble_options_are_checked(tiny_model):
    with pytest.raises(ValueError, match="method 'mean'"):
        MergeOptions("mean")
    with pytest.raises(ValueError, match="1 model weights given for 2 models"):
        MergedDetector([tiny_model, tiny_model], options=MergeOptions(model_weights=[1.0]))


def test_cli_ensemble_tta_and_merge(tmp_path, capsys):
    from conftest import TINY

    from frcnn.cli import main
    from frcnn.data.synth import write_synth

    write_synth(tmp_path / "d", 3, 128, seed=0)
    torch.manual_seed(0)
    model = frcnn.build_model("resnet18_fpn", 6, **TINY)
    model.class_names = ["rectangle", "ellipse", "triangle", "cross", "ring"]
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    frcnn.save_model(model, a)
    frcnn.save_model(model, b)
    data = str(tmp_path / "d")
    assert main(["ensemble", "--weights", str(a), str(b), "--data", data, "--iou", "0.6"]) == 0
    printed = capsys.readouterr().out
    assert "Average Precision" in printed
    assert f"ensemble of 2 models fused by wbf (IoU 0.6): {a}, {b}" in printed
    assert main(["eval", "--weights", str(a), "--data", data, "--tta", "--merge", "mean"]) == 0
    out = tmp_path / "p"
    assert main(["predict", "--weights", str(a), str(b), data, "--out", str(out), "--tta"]) == 0
    assert len(json.loads((out / "predictions.json").read_text())) == 3
    assert main(["ensemble", "--weights", str(a), str(b)]) == 2
    one = ["ensemble", "--weights", str(a), str(b), "--data", data, "--model-weights", "1"]
    assert main(one) == 2 and "1 --model-weights given for 2 models" in capsys.readouterr().err


def test_soft_nms_decays_overlaps_by_hand():
    from frcnn.boxes.merge import soft_nms

    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    labels = torch.tensor([1, 1, 1, 2])  # the last is another class: untouched
    keep, new = soft_nms(boxes, scores, labels, sigma=0.5)
    # Box 0 kept: box 1 (IoU 1) decays to 0.8 e^-2, box 2 (IoU 0.5) to 0.7 e^-0.5. Box 3
    # (its own class) next, then box 2, which decays box 1 again (IoU 0.5): 0.8 e^-2.5.
    expected = {0: 0.9, 3: 0.6, 2: 0.7 * math.exp(-0.5), 1: 0.8 * math.exp(-2.5)}
    assert keep.tolist() == [0, 3, 2, 1]
    torch.testing.assert_close(new, torch.tensor([expected[i] for i in keep.tolist()]))
