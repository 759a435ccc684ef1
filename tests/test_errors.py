"""The TIDE-style error breakdown: hand-built cases of each type, and tidecv as the oracle."""

import numpy as np
import pytest

from frcnn.data.records import DetectionDataset, ImageRecord
from frcnn.evaluation.errors import ERROR_TYPES, SPECIAL_TYPES, error_breakdown

A = [0, 0, 10, 10]  # an object of class 1


def _one_image(gt_boxes, gt_labels, boxes, labels, scores=None, crowd=None):
    rec = ImageRecord("1.png", None, 100, 100, gt_boxes, gt_labels, iscrowd=crowd, image_id=1)
    ds = DetectionDataset(".", ["a", "b"], [rec])
    n = len(boxes)
    scores = np.linspace(0.9, 0.5, n) if scores is None else np.asarray(scores)
    pred = {
        "boxes": np.array(boxes, float).reshape(-1, 4),
        "scores": scores,
        "labels": np.array(labels),
    }
    return error_breakdown(ds, {1: pred})


@pytest.mark.parametrize(
    "boxes, labels, expected",
    [
        ([A, [0, 0, 10, 10]], [1, 2], "Cls"),  # a second detection, of the wrong class
        ([A, [5, 0, 15, 10]], [1, 1], "Loc"),  # IoU 50/150 = 0.33 with its class's object
        ([A, [0, 0, 10, 9]], [1, 1], "Dupe"),  # the object is already taken
        ([A, [50, 50, 60, 60]], [1, 1], "Bkg"),  # overlaps nothing
        ([A, [5, 0, 15, 10]], [1, 2], "Both"),  # IoU 0.33 with another class's object
    ],
)
def test_each_detection_error_alone(boxes, labels, expected):
    result = _one_image([A], [1], boxes, labels)
    assert result.counts == {t: int(t == expected) for t in ERROR_TYPES}
    kinds = result.images[1].kind
    assert kinds[0] == 0  # the first (highest-scoring) detection is the true positive


def test_missed_and_usable_objects():
    miss = _one_image([A, [50, 50, 70, 70]], [1, 2], [A], [1])
    assert miss.counts == {t: int(t == "Miss") for t in ERROR_TYPES}
    assert miss.images[1].missed.tolist() == [False, True]
    # An object found only with the wrong class is a Cls error, not a Miss; fixing it gains AP.
    cls_only = _one_image([A], [1], [A], [2])
    assert cls_only.counts == {t: int(t == "Cls") for t in ERROR_TYPES}
    assert cls_only.ap50 == 0 and cls_only.dap["Cls"] == pytest.approx(1.0)
    # Image without objects: every detection is background.
    empty = _one_image(np.zeros((0, 4)), [], [A, [20, 20, 30, 30]], [1, 2])
    assert empty.counts == {t: 2 * (t == "Bkg") for t in ERROR_TYPES}


def test_detection_in_a_crowd_region_is_left_out_of_ap():
    result = _one_image(
        [A, [40, 40, 90, 90]], [1, 1], [A, [50, 50, 60, 60]], [1, 1], crowd=[False, True]
    )
    assert result.images[1].ignored.tolist() == [False, True]
    assert result.ap50 == pytest.approx(1.0)


def test_fixing_a_dupe_and_a_miss_by_hand():
    # Class 1: scores 0.9 TP, 0.8 dupe, 0.7 TP; 3 objects, one missed. Precision at recall
    # 1/3: 1, at 2/3: 2/3 (made monotone: 2/3 up to recall 2/3), nothing beyond.
    gt = [A, [20, 0, 30, 10], [50, 50, 60, 60]]
    result = _one_image(gt, [1, 1, 1], [A, A, [20, 0, 30, 10]], [1, 1, 1], [0.9, 0.8, 0.7])
    points = np.arange(101) / 100
    base = np.where(points <= 1 / 3, 1.0, np.where(points <= 2 / 3, 2 / 3, 0.0)).mean()
    assert result.ap50 == pytest.approx(base)
    no_dupe = np.where(points <= 2 / 3, 1.0, 0.0).mean()
    assert result.dap["Dupe"] == pytest.approx(no_dupe - base)
    no_miss = np.where(points <= 0.5, 1.0, 2 / 3).mean()  # 2 objects: recall 0.5 then 1
    assert result.dap["Miss"] == pytest.approx(no_miss - base)


def _random_case(seed):
    rng = np.random.default_rng(seed)
    recs, preds = [], {}
    for i in range(1, 31):
        n = 0 if i % 7 == 3 else int(rng.integers(1, 9))
        xy = rng.uniform(0, 200, (n, 2))
        wh = rng.uniform(8, 80, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1)
        labels = rng.integers(1, 5, n)
        crowd = rng.random(n) < 0.1
        recs.append(
            ImageRecord(f"{i}.png", None, 300, 300, boxes, labels, iscrowd=crowd, image_id=i)
        )
        if i % 11 == 5:
            continue  # no detections
        pick = rng.integers(0, max(n, 1), 2 * n) if n else np.zeros(0, int)
        base = boxes[pick] if n else np.zeros((0, 4))
        shift = rng.normal(0, 1, base.shape) * rng.choice([1, 6, 15], (len(base), 1))
        found = base + shift
        found[:, 2:] = np.maximum(found[:, 2:], found[:, :2] + 2)
        found_labels = np.where(
            rng.random(len(base)) < 0.2, rng.integers(1, 5, len(base)), labels[pick] if n else 0
        )
        m = int(rng.integers(0, 5))
        fxy = rng.uniform(0, 250, (m, 2))
        far = np.concatenate([fxy, fxy + rng.uniform(5, 50, (m, 2))], 1)
        preds[i] = {
            "boxes": np.concatenate([found, far]),
            "scores": rng.random(len(found) + m),
            "labels": np.concatenate([found_labels, rng.integers(1, 5, m)]).astype(int),
        }
    return DetectionDataset(".", ["a", "b", "c", "d"], recs), preds


def _tidecv(ds, preds):
    import tidecv  # the oracle: `make install` installs it, so a missing one fails the test

    gt, dt = tidecv.Data("gt"), tidecv.Data("dt")
    for rec in ds.images:
        gt.add_image(rec.image_id, rec.file_name)
        xywh = np.concatenate([rec.boxes[:, :2], rec.boxes[:, 2:] - rec.boxes[:, :2]], 1).astype(
            float
        )
        for box, label, crowd in zip(
            xywh.tolist(), rec.labels.tolist(), rec.iscrowd.tolist(), strict=True
        ):
            (gt.add_ignore_region if crowd else gt.add_ground_truth)(rec.image_id, label, box=box)
    for image_id, p in preds.items():
        b = p["boxes"]
        xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1)
        for box, s, label in zip(
            xywh.tolist(), p["scores"].tolist(), p["labels"].tolist(), strict=True
        ):
            dt.add_detection(image_id, label, s, box=box)
    tide = tidecv.TIDE()
    run = tide.evaluate(gt, dt, mode=tidecv.TIDE.BOX, name="run")
    main, special = tide.get_main_errors()["run"], tide.get_special_errors()["run"]
    counts = {e.short_name: n for e, n in run.count_errors().items()}
    return run.ap, {**main, **special}, counts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dap_equals_tidecv(seed):
    ds, preds = _random_case(seed)
    ap, dap, counts = _tidecv(ds, preds)
    result = error_breakdown(ds, preds)
    assert result.ap50 * 100 == pytest.approx(ap, abs=1e-3)
    for t in (*ERROR_TYPES, *SPECIAL_TYPES):
        assert result.dap[t] * 100 == pytest.approx(dap[t], abs=1e-3), t
    assert result.counts == {t: counts[t] for t in ERROR_TYPES}
    assert all(result.counts[t] > 0 for t in ERROR_TYPES)  # every type exercised
