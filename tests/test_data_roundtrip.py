import numpy as np
import pytest
from data_helpers import save_image, write_coco

from frcnn.cli import main
from frcnn.data import read_all_splits, read_dataset


def test_round_trip_coco_yolo_voc_csv_coco(tmp_path):
    src = tmp_path / "src"
    images = [{"id": i, "file_name": f"im/{i}.png", "width": 80, "height": 60} for i in (1, 2, 3)]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10.3, 5.7, 20.25, 30.1]},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 80, 60]},
        {"id": 3, "image_id": 3, "category_id": 2, "bbox": [40.5, 20.5, 10, 10]},
    ]  # image 2 has no boxes
    write_coco(src, images, anns, [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}])
    for i in (1, 2, 3):
        save_image(src / f"im/{i}.png", 80, 60, seed=i)
    steps = [
        ("coco", src / "ann.json"),
        ("yolo", tmp_path / "y"),
        ("voc", tmp_path / "v"),
        ("csv", tmp_path / "c"),
        ("coco", tmp_path / "back"),
    ]
    for (_, source), (fmt, out) in zip(steps, steps[1:], strict=False):
        assert main(["data", "convert", str(source), "--to", fmt, str(out)]) == 0
        assert read_dataset(out).format == fmt

    before = read_dataset(src / "ann.json")
    after = read_dataset(tmp_path / "back")
    assert len(after) == 3 and after.class_names == before.class_names
    by_name = {r.file_name.rsplit("/", 1)[-1]: r for r in after.images}
    for rec in before.images:
        other = by_name[rec.file_name.rsplit("/", 1)[-1]]
        assert other.num_boxes == rec.num_boxes
        np.testing.assert_allclose(other.boxes, rec.boxes, atol=0.5)
        assert [after.class_names[c - 1] for c in other.labels] == [
            before.class_names[c - 1] for c in rec.labels
        ]
        assert other.path.read_bytes() == rec.path.read_bytes()


def test_convert_keeps_splits(tmp_path):
    for split in ("train", "valid"):
        write_coco(
            tmp_path / "rf" / split,
            [{"id": 1, "file_name": f"{split}.png", "width": 64, "height": 48}],
            [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
            [{"id": 1, "name": "a"}],
            name="_annotations.coco.json",
        )
    assert main(["data", "convert", str(tmp_path / "rf"), "--to", "yolo", str(tmp_path / "y")]) == 0
    splits = read_all_splits(tmp_path / "y")
    assert sorted(splits) == ["train", "val"]
    assert splits["val"].images[0].file_name == "images/valid/valid.png"


def _contents(splits):
    """Split (``valid`` read as ``val``) -> {image file name: sorted boxes}, every image once."""
    out = {}
    for split, ds in splits.items():
        names = [r.file_name.rsplit("/", 1)[-1].split("__")[-1] for r in ds.images]
        assert len(names) == len(set(names)), f"an image twice in {split}"
        out["val" if split == "valid" else split] = {
            n: sorted(np.round(r.boxes, 1).tolist()) for n, r in zip(names, ds.images, strict=True)
        }
    return out


def _source(tmp_path, splits):
    """A Roboflow-style COCO folder: ``splits`` is split -> number of images (2 boxes each)."""
    image_id = 0
    for split, n in splits.items():
        images, anns = [], []
        for _ in range(n):
            image_id += 1
            images.append(
                {"id": image_id, "file_name": f"{split}{image_id}.png", "width": 80, "height": 60}
            )
            anns += [
                {"id": 2 * image_id + k, "image_id": image_id, "category_id": 1 + k,
                 "bbox": [5.0 + k * 30, 4.0 + image_id, 20.0, 15.0]}
                for k in range(2)
            ]  # fmt: skip
        write_coco(
            tmp_path / "src" / split,
            images,
            anns,
            [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
            name="_annotations.coco.json",
        )
    return tmp_path / "src"


@pytest.mark.parametrize("layout", [{"train": 3}, {"train": 3, "valid": 2, "test": 1}])
def test_every_round_trip_keeps_each_image_once_in_its_split(tmp_path, layout):
    """COCO -> YOLO -> VOC -> CSV -> COCO: at every step the data read back holds the same
    images, boxes and splits (no writer invents a split, no image is repeated)."""
    source = _source(tmp_path, layout)
    expected = _contents(read_all_splits(source))
    assert sorted(expected) == sorted("val" if s == "valid" else s for s in layout)
    for fmt in ("yolo", "voc", "csv", "coco"):
        out = tmp_path / fmt
        assert main(["data", "convert", str(source), "--to", fmt, str(out)]) == 0
        assert _contents(read_all_splits(out)) == expected, fmt
        source = out


def test_a_split_that_repeats_another_keeps_each_image_once(tmp_path, frcnn_log):
    y = tmp_path / "y"
    for i in range(4):
        save_image(y / "images" / "train" / f"{i}.png", 40, 30, seed=i)
        (y / "labels" / "train").mkdir(parents=True, exist_ok=True)
        (y / "labels" / "train" / f"{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (y / "val.txt").write_text("images/train/0.png\nimages/train/1.png\n")
    (y / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames: [a]\n")
    splits = read_all_splits(y)
    assert list(splits) == ["train"] and len(splits["train"]) == 4
    assert any("4 of the 4 images of split 'val' are also in split 'train'" in m for m in frcnn_log)
    # Only some shared: the split keeps its own images.
    save_image(y / "images" / "own.png", 40, 30, seed=9)
    (y / "val.txt").write_text("images/train/0.png\nimages/own.png\n")
    (y / "data.yaml").write_text("path: .\ntrain: images/train\nval: val.txt\nnames: [a]\n")
    splits = read_all_splits(y)
    assert [r.file_name for r in splits["val"].images] == ["images/own.png"]
    assert any("1 of the 2 images of split 'val'" in m for m in frcnn_log)
