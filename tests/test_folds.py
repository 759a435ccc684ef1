"""K-fold splits: disjoint, covering, grouped, stratified (hand-built datasets)."""

import json

import numpy as np
import pytest

from frcnn.data.records import DetectionDataset, ImageRecord
from frcnn.experiments.folds import class_presence, group_keys, kfold_assign


def _ds(names, labels_per_image, classes=("a", "b", "c"), **kw):
    images = [
        ImageRecord(
            n,
            None,
            100,
            100,
            np.tile([[0, 0, 10, 10]], (len(labels), 1)),
            labels,
            image_id=i + 1,
        )
        for i, (n, labels) in enumerate(zip(names, labels_per_image, strict=True))
    ]
    return DetectionDataset("/data", list(classes), images, **kw)


def test_source_image_keys_strip_tile_suffixes():
    ds = _ds(
        ["d/img_12_34.jpg", "img@256,0", "scan_tile3.png", "plain.jpg", "x_0_0_512_512.png"],
        [[1]] * 5,
    )
    assert group_keys(ds, "source_image") == ["d/img", "img", "scan", "plain", "x"]
    assert group_keys(ds, "folder") == ["d", ".", ".", ".", "."]
    assert group_keys(ds, r"^(\w)") == ["d", "i", "s", "p", "x"]
    with pytest.raises(ValueError, match=r"does not match image img@256,0 \(3 of 5"):
        group_keys(ds, r"_\d+")


def test_field_keys_read_the_coco_image_entries(tmp_path):
    ann = tmp_path / "a.json"
    ann.write_text(
        json.dumps({"images": [{"file_name": "x.jpg", "patient": 7}, {"file_name": "y.jpg"}]})
    )
    ds = _ds(["x.jpg"], [[1]], source=str(ann), format="coco")
    assert group_keys(ds, "field:patient") == ["7"]
    ds = _ds(["y.jpg"], [[1]], source=str(ann), format="coco")
    with pytest.raises(ValueError, match="image y.jpg .* no 'patient' field"):
        group_keys(ds, "field:patient")
    with pytest.raises(ValueError, match="reads COCO image entries"):
        group_keys(_ds(["y.jpg"], [[1]], format="yolo"), "field:patient")


def test_folds_are_disjoint_cover_and_stratify():
    rng = np.random.default_rng(0)
    # Class 3 ("c") is rare: 6 images, so 3 folds must hold 2 each; 9 images are empty.
    labels = [[1] if i % 2 else [2] for i in range(45)] + [[3, 1]] * 6 + [[]] * 9
    order = rng.permutation(len(labels))
    ds = _ds([f"i{i}.jpg" for i in range(60)], [labels[i] for i in order])
    assign = kfold_assign(ds, 3, seed=1)
    assert sorted(set(assign.tolist())) == [0, 1, 2]
    assert len(assign) == 60 and np.bincount(assign).tolist() == [20, 20, 20]
    presence = class_presence(ds)
    per_fold = np.stack([presence[assign == k].sum(0) for k in range(3)])
    assert per_fold[:, 2].tolist() == [2, 2, 2]  # the rare class, evenly
    assert per_fold[:, 3].tolist() == [3, 3, 3]  # the empty images, evenly
    assert (per_fold.max(0) - per_fold.min(0) <= 1).all()
    assert (kfold_assign(ds, 3, seed=1) == assign).all()  # the seed fixes the split


def test_groups_never_straddle_folds():
    names = [f"src{s}_{x}_{y}.png" for s in range(7) for x in (0, 256) for y in (0, 256)]
    ds = _ds(names, [[1 + s % 3] for s in range(7) for _ in range(4)])
    assign = kfold_assign(ds, 3, "source_image")
    for s in range(7):
        assert len(set(assign[4 * s : 4 * s + 4].tolist())) == 1
    with pytest.raises(ValueError, match="8 folds need at least 8 groups .* has 7"):
        kfold_assign(ds, 8, "source_image")
    with pytest.raises(ValueError, match="at least 2"):
        kfold_assign(ds, 1)
