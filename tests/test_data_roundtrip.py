import numpy as np
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
