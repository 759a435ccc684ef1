import json

import numpy as np
from data_helpers import save_image, write_coco

from frcnn.cli import main
from frcnn.data import check_dataset, read_dataset


def _bad_coco(root):
    """A COCO dataset with one instance of most problems the checks know."""
    images = [
        {"id": 1, "file_name": "ok.png", "width": 64, "height": 48},
        {"id": 2, "file_name": "missing.png", "width": 64, "height": 48, "_no_file": True},
        {"id": 3, "file_name": "corrupt.png", "width": 64, "height": 48, "_no_file": True},
        {"id": 4, "file_name": "small.png", "width": 100, "height": 100},
        {"id": 5, "file_name": "../outside.png", "width": 64, "height": 48, "_no_file": True},
        {"id": 6, "file_name": "/etc/passwd", "width": 64, "height": 48, "_no_file": True},
        {"id": 7, "file_name": "empty.png", "width": 64, "height": 48},
    ]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},  # fine
        {
            "id": 2,
            "image_id": 1,
            "category_id": 1,
            "bbox": [50, 30, 30, 30],
        },  # partly outside: clipped
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, 10]},  # zero width
        {"id": 4, "image_id": 1, "category_id": 1, "bbox": [5, None, 3, 3]},  # NaN
        {"id": 5, "image_id": 1, "category_id": 9, "bbox": [1, 1, 3, 3]},  # unknown category
        {"id": 5, "image_id": 1, "category_id": 2, "bbox": [2, 2, 5, 5]},  # duplicate id (kept)
        {"id": 7, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},  # duplicate box
        {"id": 8, "image_id": 1, "category_id": 2, "bbox": [100, 100, 5, 5]},  # fully outside
        {"id": 9, "image_id": 2, "category_id": 1, "bbox": [1, 1, 3, 3]},  # in missing image
        {"id": 10, "image_id": 3, "category_id": 1, "bbox": [1, 1, 3, 3]},  # in corrupt image
        {"id": 11, "image_id": 4, "category_id": 1, "bbox": [1, 1, 3, 3]},  # in size mismatch
        {"id": 12, "image_id": 1, "category_id": 2, "bbox": [30, 5, 10, 10], "iscrowd": 1},  # crowd
    ]
    path = write_coco(root, images, anns, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    save_image(root / "small.png", 64, 48)
    return path


def test_every_problem_is_reported_fixed_or_counted_and_counts_add_up(tmp_path):
    ds = read_dataset(_bad_coco(tmp_path))
    clean, report = check_dataset(ds, images="full")
    kinds = report.problems.counts()
    assert kinds == {
        "box_outside": 1,
        "box_degenerate": 1,
        "box_nonfinite": 1,
        "unknown_category": 1,
        "duplicate_annotation_id": 1,
        "box_duplicate": 1,
        "box_fully_outside": 1,
        "image_missing": 1,
        "image_corrupt": 1,
        "image_size_mismatch": 1,
        "unsafe_path": 2,
    }
    assert report.images_in == 7 and report.images_used == 2 and report.images_without_boxes == 1
    assert report.images_skipped == {
        "image_missing": 1,
        "image_corrupt": 1,
        "image_size_mismatch": 1,
        "unsafe_path": 2,
    }
    assert report.boxes_in == 12
    # used: ann 1, 2 (clipped), 5-bis; ignored: crowd 12
    assert report.boxes_used == 3 and report.boxes_ignored == 1
    assert report.boxes_fixed == {"box_outside": 1}
    assert report.boxes_dropped == {
        "box_degenerate": 1,
        "box_nonfinite": 1,
        "unknown_category": 1,
        "box_duplicate": 1,
        "box_fully_outside": 1,
        "image_missing": 1,
        "image_corrupt": 1,
        "image_size_mismatch": 1,
    }
    assert report.adds_up()
    ok = clean.images[0]
    np.testing.assert_allclose(ok.boxes[ok.ann_ids == 2], [[50, 30, 64, 48]])  # clipped
    assert [r.file_name for r in clean.images] == ["ok.png", "empty.png"]


def test_messages_name_file_image_and_annotation(tmp_path):
    ds = read_dataset(_bad_coco(tmp_path))
    _, report = check_dataset(ds, images="full")
    text = {p.kind: str(p) for p in report.problems}
    assert text["box_degenerate"] == (
        "error: ann.json, image ok.png, annotation id 3: zero or negative width or height: "
        "[5, 5, 5, 15] in a 64x48 image [box_degenerate]"
    )
    assert "annotation says 100x100, image is 64x48" in text["image_size_mismatch"]
    assert (
        "escapes the dataset root"
        in [str(p) for p in report.problems if p.kind == "unsafe_path"][0]
    )
    assert (
        "absolute file name '/etc/passwd' refused"
        in [str(p) for p in report.problems if p.kind == "unsafe_path"][1]
    )
    assert "category_id 9 is not in categories" in text["unknown_category"]


def test_yolo_row_problems(tmp_path):
    save_image(tmp_path / "images" / "a.png", 100, 100)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n"  # fine
        "0 0.5 0.5 0.2\n"  # wrong column count
        "3 0.5 0.5 0.2 0.2\n"  # class id >= number of names
        "1 0.95 0.5 0.2 0.2\n"  # x2 = 1.05: out of range, clipped
        "0 x 0.5 0.2 0.2\n"  # not a number
    )
    (tmp_path / "classes.txt").write_text("a\nb\n")
    _, report = check_dataset(read_dataset(tmp_path))
    assert report.problems.counts() == {"bad_row": 2, "yolo_bad_class": 1, "yolo_out_of_range": 1}
    assert report.boxes_in == 5 and report.boxes_used == 2 and report.adds_up()
    msgs = [str(p) for p in report.problems]
    assert "labels/a.txt, image images/a.png, annotation row 2: 4 columns, expected 5" in msgs[0]
    assert "class id 3 but 2 names" in msgs[1]
    assert "annotation row 4" in msgs[3]


def test_data_check_cli_exit_status_and_json(tmp_path, capsys):
    path = _bad_coco(tmp_path / "bad")
    assert main(["data", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "box_degenerate" in out and "instances per class: a 2, b 1" in out
    assert "box sizes (COCO areas): small 3" in out
    assert main(["data", "check", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    split = report["splits"]["train"]
    assert split["problems_by_kind"]["unsafe_path"] == 2 and split["adds_up"]
    assert split["images"]["in"] == 7 and split["boxes"]["used"] == 3
    assert split["instances_per_class"] == {"a": 2, "b": 1}

    good = write_coco(
        tmp_path / "good",
        [{"id": 1, "file_name": "x.png", "width": 64, "height": 48}],
        [],
        [{"id": 1, "name": "a"}],
    )
    assert main(["data", "check", str(good)]) == 0
    assert "no errors" in capsys.readouterr().out


def test_float_rounding_at_the_edge_is_not_a_problem(tmp_path):
    path = write_coco(
        tmp_path,
        [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 54.005, 20]}],  # x2 = 64.005
        [{"id": 1, "name": "a"}],
    )
    clean, report = check_dataset(read_dataset(path))
    assert len(report.problems) == 0 and report.boxes_used == 1
    np.testing.assert_allclose(clean.images[0].boxes, [[10, 10, 64, 30]])
