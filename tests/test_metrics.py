import copy

import numpy as np
import pytest

from frcnn.data.records import DetectionDataset, ImageRecord
from frcnn.evaluation import COCO_KEYS, coco_ground_truth, coco_results, evaluate_detections
from frcnn.evaluation.matching import confusion_matrix, match_image


def _dataset_and_predictions(seed=0):
    rng = np.random.default_rng(seed)
    recs, preds = [], []
    for i in range(1, 13):
        n = 0 if i in (3, 7) else int(rng.integers(1, 6))  # images 3 and 7: no ground truth
        xy = rng.uniform(0, 180, (n, 2))
        wh = np.exp(rng.uniform(np.log(6), np.log(120), (n, 2)))  # small, medium and large
        boxes = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(1, 4, n)
        crowd = rng.random(n) < 0.15
        recs.append(
            ImageRecord(f"{i}.png", None, 320, 320, boxes, labels, iscrowd=crowd, image_id=i * 10)
        )
        if i in (5, 9):
            continue  # images with no detections at all
        jitter = boxes + rng.normal(0, 3, boxes.shape)
        jitter[:, 2:] = np.maximum(jitter[:, 2:], jitter[:, :2] + 1)
        flip = rng.random(n) < 0.2
        pl = np.where(flip, rng.integers(1, 4, n), labels)
        fxy = rng.uniform(0, 250, (3, 2))
        fb = np.concatenate([fxy, fxy + rng.uniform(5, 60, (3, 2))], 1)
        preds.append(
            {
                "image_id": i * 10,
                "boxes": np.concatenate([jitter, fb]),
                "scores": rng.random(n + 3),
                "labels": np.concatenate([pl, rng.integers(1, 4, 3)]),
            }
        )
    return DetectionDataset(".", ["a", "b", "c"], recs), preds


def test_coco_numbers_equal_pycocotools():
    pycocotools = pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    assert pycocotools
    ds, preds = _dataset_and_predictions()
    result = evaluate_detections(ds, preds)
    gt = COCO()
    gt.dataset = copy.deepcopy(coco_ground_truth(ds))
    gt.createIndex()
    dt = gt.loadRes(coco_results(preds))
    ref = COCOeval(gt, dt, "bbox")
    ref.evaluate()
    ref.accumulate()
    ref.summarize()
    assert [result.coco[k] for k in COCO_KEYS] == pytest.approx(list(ref.stats), abs=1e-12)
    np.testing.assert_allclose(result.coco_precision, ref.eval["precision"], atol=1e-12)
    assert sum(a["iscrowd"] for a in gt.dataset["annotations"]) > 0  # crowd boxes exercised
    assert result.coco["APs"] >= 0 and result.coco["APl"] >= 0  # every size bin populated


def test_perfect_and_empty_detections():
    ds, _ = _dataset_and_predictions(1)
    perfect = [
        {
            "image_id": r.image_id,
            "boxes": r.boxes,
            "scores": np.ones(r.num_boxes),
            "labels": r.labels,
        }
        for r in ds.images
    ]
    result = evaluate_detections(ds, perfect)
    assert result.coco["AP"] == pytest.approx(1.0) and result.coco["AP50"] == pytest.approx(1.0)
    assert result.f1 == pytest.approx(1.0, abs=1e-3) and result.f1_at_conf == pytest.approx(
        1.0, abs=1e-3
    )
    assert result.score == pytest.approx(1.0, abs=1e-3)
    nothing = evaluate_detections(ds, [])
    assert nothing.coco["AP"] == 0 and nothing.f1 == 0 and nothing.score == 0


def test_hand_computed_precision_recall_f1_and_table():
    # one image, two objects of class 1; three detections: a hit (0.9), a miss (0.8), a hit (0.6)
    rec = ImageRecord(
        "a.png", None, 100, 100, [[0, 0, 10, 10], [50, 50, 70, 70]], [1, 1], image_id=1
    )
    ds = DetectionDataset(".", ["thing"], [rec])
    pred = {
        "image_id": 1,
        "boxes": [[0, 0, 10, 10], [80, 80, 90, 90], [50, 50, 70, 70]],
        "scores": [0.9, 0.8, 0.6],
        "labels": [1, 1, 1],
    }
    result = evaluate_detections(ds, [pred], conf=0.7)
    # at conf 0.7: detections 0.9 and 0.8 -> 1 TP, 1 FP: P = 0.5, R = 0.5, F1 = 0.5
    assert result.precision_at_conf == pytest.approx(0.5)
    assert result.recall_at_conf == pytest.approx(0.5)
    assert result.f1_at_conf == pytest.approx(0.5)
    # best threshold keeps all three: P = 2/3, R = 1, F1 = 0.8
    assert result.f1_best == pytest.approx(0.8) and result.recall_best == pytest.approx(1.0)
    row = result.per_class[0]
    assert row["images"] == 1 and row["instances"] == 2
    # COCO AP50: precision 1 up to recall 0.5, then 2/3 up to recall 1 (101-point interpolation)
    assert row["mAP50"] == pytest.approx((51 * 1 + 50 * 2 / 3) / 101, abs=1e-6)
    assert result.score == pytest.approx(0.5 * row["mAP50"] + 0.5 * 0.5)
    assert "thing" in result.table()


def test_match_image_and_crowd_regions():
    gt = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], float)
    pred = np.array([[0, 0, 9, 10], [21, 21, 40, 40], [0, 0, 10, 10]], float)
    scores = np.array([0.7, 0.8, 0.9])
    m = match_image(
        pred, scores, np.array([1, 1, 1]), gt, np.array([1, 1]), np.array([False, True])
    )
    # In score order: pred 2 matches gt 0; pred 1 only lies in the crowd region: ignored;
    # pred 0 is a duplicate of gt 0: a false positive.
    assert m.order.tolist() == [2, 1, 0]
    assert m.matched.tolist() == [0, -1, -1] and m.tp.tolist() == [True, False, False]
    assert m.ignored.tolist() == [False, True, False]
    # Cut at two detections, and exactly half of a box in a crowd region is inside it (COCO).
    half = match_image(
        np.array([[0, 0, 10, 10], [30, 20, 50, 40]], float),
        np.array([0.9, 0.8]),
        np.array([1, 1]),
        gt,
        np.array([1, 1]),
        np.array([False, True]),
        max_dets=2,
    )
    assert half.tp.tolist() == [True, False] and half.ignored.tolist() == [False, True]
    assert (
        len(
            match_image(
                pred, scores, np.ones(3, int), gt, np.ones(2, int), np.zeros(2, bool), 2
            ).order
        )
        == 2
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ap50_from_the_one_matching_equals_coco(seed):
    from frcnn.evaluation.matching import average_precision, match_record

    ds, preds = _dataset_and_predictions(seed)
    by_id = {p["image_id"]: p for p in preds}
    tp, scores, labels = [], [], []
    num_gt = np.zeros(len(ds.class_names) + 1, np.int64)
    for rec in ds.images:
        pred = by_id.get(rec.image_id, {"boxes": [], "scores": [], "labels": []})
        m = match_record(pred, rec, max_dets=100)
        keep = ~m.ignored
        tp.append(m.tp[keep])
        scores.append(np.asarray(pred["scores"])[m.order][keep])
        labels.append(np.asarray(pred["labels"], int)[m.order][keep])
        np.add.at(num_gt, rec.labels[~rec.iscrowd], 1)
    ours = average_precision(
        np.concatenate(tp), np.concatenate(scores), np.concatenate(labels), num_gt
    )
    result = evaluate_detections(ds, preds)
    assert any(r.iscrowd.any() for r in ds.images)
    for c, row in enumerate(result.per_class, start=1):
        if num_gt[c]:
            assert ours[c] == pytest.approx(row["mAP50"], abs=1e-6), row["class"]


def test_confusion_matrix_literal():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], float)
    gt_labels = np.array([1, 2, 2])
    pred = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [80, 80, 90, 90]], float)
    pred_labels = np.array([1, 1, 2])
    m = confusion_matrix(pred, np.ones(3), pred_labels, gt, gt_labels, num_classes=2)
    expected = np.array(
        [
            [1, 1, 0],  # predicted 1: a true 1, a true 2
            [0, 0, 1],  # predicted 2: nothing true (background)
            [0, 1, 0],  # background: the missed true 2
        ]
    )
    np.testing.assert_array_equal(m, expected)


def test_coco_results_written_by_predict_read_back(tmp_path):
    from pathlib import Path

    from frcnn.evaluation.coco import read_coco_results
    from frcnn.inference.outputs import write_predictions
    from frcnn.inference.predict import Prediction

    boxes = np.array([[1.5, 2.0, 11.0, 22.25], [0.0, 0.0, 4.0, 4.0]], np.float32)
    preds = [
        Prediction(
            Path("a.png"), 30, 30, boxes, np.array([0.9, 0.4], np.float32), np.array([2, 1])
        ),
        Prediction(
            Path("b.png"), 30, 30, np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0, int)
        ),
    ]
    path = write_predictions(preds, tmp_path, "coco", ["cat", "dog"])
    (back,) = read_coco_results(path)  # the image without detections has no results
    assert back["image_id"] == 1 and back["labels"].tolist() == [2, 1]
    np.testing.assert_allclose(back["boxes"], boxes)
    np.testing.assert_allclose(back["scores"], [0.9, 0.4], rtol=1e-6)


def test_precision_without_detections_is_undefined_and_the_table_has_an_all_row(tmp_path):
    import json
    import math

    recs = [
        ImageRecord("1.png", None, 100, 100, [[10, 10, 50, 50]], [1], image_id=1),
        ImageRecord(
            "2.png", None, 100, 100, [[10, 10, 50, 50], [60, 60, 90, 90]], [2, 2], image_id=2
        ),
    ]
    ds = DetectionDataset(".", ["a", "b"], recs)
    # one detection of "a", in the wrong place: P(a) = 0; nothing of "b": P(b) undefined
    wrong = {
        "image_id": 1,
        "boxes": np.array([[60.0, 60, 90, 90]]),
        "scores": np.array([0.9]),
        "labels": np.array([1]),
    }
    r = evaluate_detections(ds, [wrong], conf=0.5)
    assert r.per_class[0]["precision"] == 0.0 and math.isnan(r.per_class[1]["precision"])
    assert r.precision_at_conf == 0.0  # the mean over the classes where it is defined
    # nothing at all: undefined, not 1.0
    none = evaluate_detections(ds, [], conf=0.5)
    assert math.isnan(none.precision_at_conf) and none.recall_at_conf == 0.0
    lines = none.table().splitlines()
    assert lines[0].startswith("P, R, F1 at score >= 0.5")  # the threshold in the title
    assert lines[2].split() == ["all", "2", "3", "-", "0.000", "0.000", "0.000", "0.000"]
    assert lines[4].split()[:5] == ["b", "1", "2", "-", "0.000"]
    none.write(tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())  # strict JSON: null, not NaN
    assert saved["precision_at_conf"] is None and saved["per_class"][1]["precision"] is None
    rows = (tmp_path / "per_class.csv").read_text().splitlines()
    assert rows[1] == "all,2,3,,0.0,0.0,0.0,0.0" and len(rows) == 4


def test_confusion_matrix_precision_and_recall_agree_at_conf():
    # Class a: objects A1, A2; class b: object B1. Detections (score): a on A1 (0.9, TP),
    # b on A2 (0.8, a confusion), a on B1 (0.7, a confusion), a far away (0.6, a false
    # alarm), b on A1 (0.2, below conf 0.5: not counted).
    a1, a2, b1 = [0, 0, 20, 20], [40, 0, 60, 20], [0, 40, 20, 60]
    rec = ImageRecord("1.png", None, 100, 100, [a1, a2, b1], [1, 1, 2], image_id=1)
    ds = DetectionDataset(".", ["a", "b"], [rec])
    pred = {
        "image_id": 1,
        "boxes": np.array([a1, a2, b1, [80, 80, 95, 95], a1], float),
        "scores": np.array([0.9, 0.8, 0.7, 0.6, 0.2]),
        "labels": np.array([1, 2, 1, 1, 2]),
    }
    r = evaluate_detections(ds, [pred], conf=0.5)
    expected = np.array(
        [  # rows predicted a, b, background; columns true a, b, background
            [1, 1, 1],
            [1, 0, 0],
            [0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(r.confusion, expected)
    m = r.confusion
    # By hand: a: 1 TP of 3 detections, 1 of 2 objects; b: 0 of 1 detection, 0 of 1 object.
    assert r.per_class[0]["precision"] == pytest.approx(1 / 3) == m[0, 0] / m[0].sum()
    assert r.per_class[0]["recall"] == pytest.approx(1 / 2) == m[0, 0] / m[:, 0].sum()
    assert r.per_class[1]["precision"] == 0 == m[1, 1] / m[1].sum()
    assert r.per_class[1]["recall"] == 0 == m[1, 1] / m[:, 1].sum()
    assert r.precision == pytest.approx((1 / 3 + 0) / 2) and r.recall == pytest.approx(0.25)


def test_size_table_matches_coco_and_takes_own_bins():
    ds, preds = _dataset_and_predictions()
    r = evaluate_detections(ds, preds)
    rows = {(row["class"], row["size"]): row for row in r.sizes.rows}
    for size, key in (("small", "APs"), ("medium", "APm"), ("large", "APl")):
        assert rows[("all", size)]["AP"] == pytest.approx(r.coco[key], abs=1e-12)
    assert rows[("all", "large")]["AR"] == pytest.approx(r.coco["ARl"], abs=1e-12)
    side = np.sqrt(
        np.concatenate(
            [(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) for b in (x.boxes for x in ds.images)]
        )
    )
    regular = np.concatenate([~(x.iscrowd | x.ignore) for x in ds.images])
    assert sum(rows[("all", s)]["instances"] for s in ("small", "medium", "large")) == regular.sum()
    own = evaluate_detections(ds, preds, size_bins=[0, 20, 50, float("inf")])
    assert own.sizes.names == ("0-20", "20-50", ">=50")
    counts = [row["instances"] for row in own.sizes.rows if row["class"] == "all"]
    assert counts == [
        int(((side >= lo) & (side <= hi) & regular).sum())
        for lo, hi in ((0, 20), (20, 50), (50, 1e9))
    ]
    assert "0-20 px" in own.sizes.bins_text()
