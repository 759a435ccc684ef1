"""Label issues from out-of-fold predictions: each kind on a hand-built image, and the
deliberately corrupted labels of a synthetic set found at the top of the list."""

import numpy as np
import pytest

from frcnn.data.records import DetectionDataset, ImageRecord
from frcnn.experiments.label_issues import find_label_issues


def _rec(boxes, labels, image_id=1, crowd=None):
    return ImageRecord(
        f"im{image_id}.png",
        None,
        256,
        256,
        boxes,
        labels,
        crowd,
        image_id=image_id,
        ann_ids=np.arange(len(labels)) + 10 * image_id,
    )


def test_each_kind_once_with_its_hand_computed_rank():
    gt = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 60, 70, 70]]
    ds = DetectionDataset("/d", ["a", "b"], [_rec(gt, [1, 1, 2, 1])])
    pred = {
        "image_id": 1,
        "boxes": np.array(
            [
                [0, 0, 10, 10],  # finds box 0: no issue
                [20, 20, 30, 30],  # class b on box 1 (a): swapped, (0.8 - 0) x 0.8
                [45, 40, 55, 50],  # IoU 1/3 with box 2: bad box, 0.7 * (1 - 1/3)
                [66, 60, 76, 70],  # IoU 0.25 with box 3, weak: box 3 spurious, 1 - 0.3
                [80, 80, 90, 90],  # nothing there: missing label, 0.95
            ],
            float,
        ),
        "scores": np.array([0.9, 0.8, 0.7, 0.3, 0.95]),
        "labels": np.array([1, 2, 2, 1, 1]),
    }
    # Uncalibrated: a detection's trust is its score, every box is found at rate 1.
    issues = find_label_issues(ds, [pred], calibrate=False)
    assert [(i.kind, i.ann_id) for i in issues] == [
        ("missing_label", -1),
        ("spurious_label", 13),
        ("swapped_label", 11),
        ("bad_box", 12),
    ]
    assert [i.rank for i in issues] == pytest.approx([0.95, 0.7, 0.64, 0.7 * 2 / 3], abs=1e-6)
    assert issues[2].gt_label == 1 and issues[2].pred_label == 2
    assert issues[3].iou == pytest.approx(1 / 3)


def test_crowd_regions_absorb_detections_and_are_never_reported():
    ds = DetectionDataset(
        "/d", ["a"], [_rec([[0, 0, 50, 50], [60, 60, 90, 90]], [1, 1], crowd=[True, False])]
    )
    pred = {
        "image_id": 1,
        "boxes": np.array([[5.0, 5, 40, 40], [60, 60, 90, 90]]),
        "scores": np.array([0.9, 0.9]),
        "labels": np.array([1, 1]),
    }
    assert find_label_issues(ds, [pred]) == []
    assert [i.kind for i in find_label_issues(ds, [])] == ["spurious_label"]


def test_corrupted_labels_rank_first(tmp_path):
    """An oracle's predictions (the clean labels, plus weak noise) against labels where a
    test removed, relabelled, shifted and invented boxes: the top of the list is exactly
    the corrupted boxes (precision 1.0 among the top 16)."""
    from frcnn.data.synth import synth_image

    rng = np.random.default_rng(0)
    clean, preds = [], []
    for i in range(40):
        _, boxes, labels = synth_image(rng, 128, empty_prob=0.0, min_objects=2)
        clean.append(_rec(boxes, labels, i + 1))
        noise = rng.uniform(0, 100, (3, 2))
        preds.append(
            {
                "image_id": i + 1,
                "boxes": np.concatenate([boxes, np.concatenate([noise, noise + 20], 1)]),
                "scores": np.concatenate([np.full(len(boxes), 0.9), rng.uniform(0.05, 0.3, 3)]),
                "labels": np.concatenate([labels, rng.integers(1, 6, 3)]),
            }
        )
    corrupt = [r.subset(np.arange(r.num_boxes)) for r in clean]
    truth = set()
    for i in range(0, 4):  # removed: missing labels
        corrupt[i] = corrupt[i].subset(np.arange(1, corrupt[i].num_boxes))
        truth.add(("missing_label", i + 1))
    for i in range(4, 8):  # relabelled
        corrupt[i].labels[0] = corrupt[i].labels[0] % 5 + 1
        truth.add(("swapped_label", i + 1))
    for i in range(8, 12):  # shifted by 60% of the width
        w = corrupt[i].boxes[0, 2] - corrupt[i].boxes[0, 0]
        corrupt[i].boxes[0, [0, 2]] += 0.6 * w
        truth.add(("bad_box", i + 1))
    for i in range(12, 16):  # invented where the oracle sees nothing
        corrupt[i].set_annotations(
            np.concatenate([corrupt[i].boxes, [[200, 200, 230, 230]]]),
            np.append(corrupt[i].labels, 1),
        )
        truth.add(("spurious_label", i + 1))
    ds = DetectionDataset(tmp_path, ["rectangle", "ellipse", "triangle", "cross", "ring"], corrupt)
    issues = find_label_issues(ds, preds)
    top = {(i.kind, i.image_id) for i in issues[:16]}
    assert top == truth


def test_calibration_trusts_the_models_record():
    """Two classes: the models find every large "a" box but only half the small "b" ones. A
    large "a" box they miss ranks far above a small "b" box they miss."""
    records, preds = [], []
    for i in range(40):
        a = [10, 10, 110, 110]  # large, always found
        b = [150, 150, 158, 158]  # small, found in even images only
        records.append(_rec([a, b], [1, 2], i + 1))
        boxes, labels = [a], [1]
        if i % 2 == 0:
            boxes.append(b)
            labels.append(2)
        preds.append(
            {
                "image_id": i + 1,
                "boxes": np.array(boxes, float),
                "scores": np.full(len(boxes), 0.9),
                "labels": np.array(labels),
            }
        )
    preds[1] = {
        **preds[1],
        "boxes": preds[1]["boxes"][:0],
        "scores": np.zeros(0),
        "labels": np.zeros(0, int),
    }  # image 2: the large box missed too
    ds = DetectionDataset("/d", ["a", "b"], records)
    issues = find_label_issues(ds, preds)
    assert (issues[0].kind, issues[0].image_id, issues[0].gt_label) == ("spurious_label", 2, 1)
    small = [i.rank for i in issues if i.gt_label == 2]
    assert len(small) == 20 and max(small) < 0.6 < issues[0].rank


@pytest.mark.parametrize("ap50, weak", [(0.003, True), (0.299, True), (0.3, False), (0.8, False)])
def test_models_too_weak_to_judge_labels_are_said_to_be(tmp_path, ap50, weak, frcnn_log):
    import json

    from frcnn.experiments.label_issues import write_label_issues

    ds = DetectionDataset(tmp_path, ["a"], [_rec([[10, 10, 50, 50]], [1])])
    preds = [{"image_id": 1, "boxes": np.zeros((0, 4)), "scores": [], "labels": []}]
    issues = find_label_issues(ds, preds)
    write_label_issues(issues, ds, preds, tmp_path / "out", gallery=0, ap50=ap50)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["issues"] == len(issues) == 1 and summary["by_kind"]["spurious_label"] == 1
    assert summary["predictions_AP50"] == ap50 and summary["models_too_weak"] is weak
    said = [m for m in frcnn_log if "too weak" in m or "models' errors" in m]
    assert bool(said) is weak and (summary["warning"] is not None) is weak
