import numpy as np
import pytest
import torch
from data_helpers import save_image, write_coco
from PIL import Image

from frcnn.data import detect_format, list_splits, read_dataset


def test_coco_file_xywh_to_xyxy_and_contiguous_labels(tmp_path):
    path = write_coco(
        tmp_path,
        [
            {"id": 10, "file_name": "a.png", "width": 64, "height": 48},
            {"id": 11, "file_name": "b.png"},
        ],
        [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [5, 6, 10, 20], "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [1.5, 2, 3, 4], "iscrowd": 1},
        ],
        [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
    )
    ds = read_dataset(path)
    assert ds.format == "coco" and ds.class_names == ["cat", "dog"]
    a, b = ds.images
    assert a.image_id == 10 and a.width == 64 and a.height == 48
    np.testing.assert_allclose(a.boxes, [[5, 6, 15, 26], [1.5, 2, 4.5, 6]])
    assert a.labels.tolist() == [2, 1] and a.iscrowd.tolist() == [False, True]
    assert b.num_boxes == 0  # an image without annotations is kept, with no boxes


def test_roboflow_export_folder_and_parent_category(tmp_path):
    cats = [
        {"id": 0, "name": "shapes", "supercategory": "none"},
        {"id": 1, "name": "circle", "supercategory": "shapes"},
        {"id": 2, "name": "square", "supercategory": "shapes"},
    ]
    for split in ("train", "valid"):
        write_coco(
            tmp_path / split,
            [{"id": 1, "file_name": "x.jpg"}],
            [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [1, 1, 5, 5]}],
            cats,
            name="_annotations.coco.json",
        )
    assert detect_format(tmp_path) == "coco"
    assert list_splits(tmp_path) == ["train", "valid"]
    ds = read_dataset(tmp_path, split="valid")
    assert ds.class_names == ["circle", "square"]  # Roboflow's unused parent is not a class
    assert ds.images[0].labels.tolist() == [2]
    assert ds.images[0].path == (tmp_path / "valid" / "x.jpg").resolve()


def _yolo_dataset(root):
    save_image(root / "images" / "train" / "a.png", 100, 50)
    save_image(root / "images" / "train" / "b.png", 100, 50)
    save_image(root / "images" / "train" / "c.png", 100, 50)
    save_image(root / "images" / "val" / "d.png", 100, 50)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.2 0.4\n0 0.1 0.2 0.1 0.2\n")
    (root / "labels" / "train" / "b.txt").write_text("")  # empty file: no objects; c has no file
    (root / "labels" / "val" / "d.txt").write_text("0 0.5 0.5 1.0 1.0\n")
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: cat\n  1: dog\n"
    )


def test_yolo_layout_rows_scaled_to_pixels(tmp_path):
    _yolo_dataset(tmp_path)
    assert detect_format(tmp_path) == "yolo" and list_splits(tmp_path) == ["train", "val"]
    ds = read_dataset(tmp_path)
    assert ds.class_names == ["cat", "dog"] and len(ds) == 3
    a, b, c = ds.images
    # cx 0.5 cy 0.5 w 0.2 h 0.4 in 100 x 50 -> [40, 15, 60, 35]
    np.testing.assert_allclose(a.boxes, [[40, 15, 60, 35], [5, 5, 15, 15]], atol=1e-4)
    assert a.labels.tolist() == [2, 1] and a.ann_ids.tolist() == [1, 2]
    assert b.num_boxes == 0 and c.num_boxes == 0
    val = read_dataset(tmp_path / "data.yaml", split="val")
    np.testing.assert_allclose(val.images[0].boxes, [[0, 0, 100, 50]])


def test_yolo_names_file_layout(tmp_path):
    save_image(tmp_path / "images" / "x.png", 40, 40)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "classes.txt").write_text("thing\n")
    ds = read_dataset(tmp_path)
    assert ds.format == "yolo" and ds.class_names == ["thing"]
    np.testing.assert_allclose(ds.images[0].boxes, [[10, 10, 30, 30]])


def _voc_xml(name, objects, width=64, height=48):
    objs = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin>"
        f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, d, b in objects
    )
    return f"<annotation><filename>{name}</filename><size><width>{width}</width><height>{height}</height></size>{objs}</annotation>"


def test_voc_layout_with_splits_difficult_and_one_based_coordinates(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    save_image(tmp_path / "JPEGImages" / "1.jpg")
    save_image(tmp_path / "JPEGImages" / "2.jpg")
    (tmp_path / "Annotations" / "1.xml").write_text(
        _voc_xml("1.jpg", [("dog", 0, (11, 21, 30, 40)), ("cat", 1, (1, 1, 5, 5))])
    )
    (tmp_path / "Annotations" / "2.xml").write_text(_voc_xml("2.jpg", []))
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("1\n")
    (tmp_path / "ImageSets" / "Main" / "val.txt").write_text("2\n")
    (tmp_path / "ImageSets" / "Main" / "dog_train.txt").write_text("1 1\n")
    assert detect_format(tmp_path) == "voc" and list_splits(tmp_path) == ["train", "val"]
    ds = read_dataset(tmp_path)
    assert ds.class_names == ["cat", "dog"]
    rec = ds.images[0]
    np.testing.assert_allclose(rec.boxes, [[10, 20, 30, 40], [0, 0, 5, 5]])
    assert rec.labels.tolist() == [2, 1] and rec.ignore.tolist() == [False, True]
    assert read_dataset(tmp_path, split="val").images[0].num_boxes == 0


def test_voc_flat_folder_and_xml_bomb_is_refused(tmp_path):
    save_image(tmp_path / "a.png")
    (tmp_path / "a.xml").write_text(_voc_xml("a.png", [("car", 0, (2, 2, 10, 10))]))
    bomb = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><annotation><filename>&lol2;</filename></annotation>'
    (tmp_path / "b.xml").write_text(bomb)
    save_image(tmp_path / "b.png")
    (tmp_path / "classes.txt").write_text("car\n")
    ds = read_dataset(tmp_path)
    assert ds.format == "voc"
    assert ds.images[0].labels.tolist() == [1]
    assert ds.images[1].skip == "bad_row"
    assert any("cannot read annotation file" in p.message for p in ds.problems)


def test_csv_rows_and_images_without_boxes(tmp_path):
    save_image(tmp_path / "img" / "a.png")
    save_image(tmp_path / "img" / "b.png")
    (tmp_path / "boxes.csv").write_text(
        "image_path,xmin,ymin,xmax,ymax,label\nimg/a.png,1,2,30,40,cat\nimg/a.png,5,5,9.5,9,dog\nimg/b.png,,,,,\n"
    )
    ds = read_dataset(tmp_path / "boxes.csv")
    assert ds.format == "csv" and ds.class_names == ["cat", "dog"]
    a, b = ds.images
    np.testing.assert_allclose(a.boxes, [[1, 2, 30, 40], [5, 5, 9.5, 9]])
    assert a.labels.tolist() == [1, 2] and a.width == 64 and b.num_boxes == 0


def test_csv_tensorflow_style_columns(tmp_path):
    save_image(tmp_path / "a.png")
    (tmp_path / "train.csv").write_text(
        "filename,width,height,class,xmin,ymin,xmax,ymax\na.png,64,48,cat,1,2,3,4\n"
    )
    ds = read_dataset(tmp_path)
    np.testing.assert_allclose(ds.images[0].boxes, [[1, 2, 3, 4]])


def test_unknown_format_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="cannot tell the dataset format"):
        detect_format(tmp_path)
    with pytest.raises(FileNotFoundError):
        detect_format(tmp_path / "nope")


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "I;16", "1", "CMYK"])
def test_image_modes_become_three_channels(tmp_path, mode):
    from frcnn.data.images import load_image, to_tensor

    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    if mode == "I;16":
        Image.fromarray(np.full((8, 10), 65535, np.uint16)).save(path)
    else:
        save_image(path, 10, 8, mode=mode)
    arr = load_image(path)
    assert arr.shape == (8, 10, 3)
    tensor = to_tensor(arr)
    assert tensor.shape == (3, 8, 10) and 0 <= float(tensor.min()) and float(tensor.max()) <= 1
    if mode == "I;16":
        assert float(tensor.min()) == 1.0
    if mode in ("L", "LA", "1"):
        assert (tensor[0] == tensor[1]).all() and (tensor[1] == tensor[2]).all()


def test_exif_orientation_applied(tmp_path):
    from frcnn.data.images import image_size, load_image

    im = Image.new("RGB", (40, 20))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90
    im.save(tmp_path / "r.jpg", exif=exif)
    assert image_size(tmp_path / "r.jpg") == (20, 40)
    assert load_image(tmp_path / "r.jpg").shape == (40, 20, 3)
    assert load_image(tmp_path / "r.jpg", exif=False).shape == (20, 40, 3)


def test_read_image_is_the_detector_input(tmp_path):
    import frcnn

    pixels = np.array([[[0, 51, 255], [255, 102, 0]]], np.uint8)  # 1 x 2 RGB
    Image.fromarray(pixels).save(tmp_path / "p.png")
    tensor = frcnn.read_image(tmp_path / "p.png")
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 1, 2)
    assert torch.equal(tensor[:, 0, 0], torch.tensor([0.0, 0.2, 1.0]))  # 51/255 = 0.2
    assert torch.equal(tensor[:, 0, 1], torch.tensor([1.0, 0.4, 0.0]))
    im = Image.new("RGB", (40, 20))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90
    im.save(tmp_path / "r.jpg", exif=exif)
    assert frcnn.read_image(tmp_path / "r.jpg").shape == (3, 40, 20)
    assert frcnn.read_image(tmp_path / "r.jpg", exif=False).shape == (3, 20, 40)


def test_voc_filename_with_another_extension_is_found_and_reported(tmp_path):
    save_image(tmp_path / "x.png")
    # the XML says x.tif (the file was converted to PNG after labelling)
    (tmp_path / "x.xml").write_text(_voc_xml("x.tif", [("car", 0, (2, 2, 10, 10))]))
    (tmp_path / "escape.xml").write_text(_voc_xml("../outside.tif", [("car", 0, (2, 2, 9, 9))]))
    (tmp_path / "classes.txt").write_text("car\n")
    ds = read_dataset(tmp_path)
    fixed = [p for p in ds.problems if p.kind == "image_name_fixed"]
    assert len(fixed) == 1 and "x.tif not found; using x.png" in fixed[0].message
    rec = next(r for r in ds.images if r.file_name == "x.png")
    assert rec.labels.tolist() == [1] and rec.path.name == "x.png"  # the boxes are kept
    escape = next(r for r in ds.images if "outside" in r.file_name)
    assert escape.skip == "unsafe_path"  # no look outside the dataset root


def test_yolo_export_without_a_val_split_invents_none(tmp_path, frcnn_log):
    import yaml

    from frcnn.cli import main

    save_image(tmp_path / "src" / "a.png")
    (tmp_path / "src" / "a.xml").write_text(_voc_xml("a.png", [("car", 0, (2, 2, 10, 10))]))
    (tmp_path / "src" / "classes.txt").write_text("car\n")
    assert (
        main(["data", "convert", str(tmp_path / "src"), "--to", "yolo", str(tmp_path / "y")]) == 0
    )
    cfg = yaml.safe_load((tmp_path / "y" / "data.yaml").read_text())
    # val: = the training images would be read back as a validation split leaking them
    assert cfg["train"] == "images/train" and "val" not in cfg
    assert any("has no val:" in m for m in frcnn_log)


SPREADSHEET_ROWS = [
    ["image_path", "width", "height", "xmin", "ymin", "xmax", "ymax", "label"],
    ["a.png", "64", "48", "1", "2", "30.5", "40", "café"],
    ["a.png", "64", "48", "5", "5", "9", "9", "dog"],
    ["b.png", "64", "48", "x", "2", "3", "4", "dog"],  # a bad number
    ["c.png", "sixty", "48", "1", "2", "3", "4", "dog"],  # a bad size
    ["c.png", "64", "48", "2", "2", "6", "7", "dog"],
]


def _spreadsheet(path, rows, delimiter, encoding, newline="\r\n", first="", decimal="."):
    def cell(c):
        return c.replace(".", decimal) if c.replace(".", "").isdigit() else c

    lines = [delimiter.join(cell(c) for c in row) for row in rows]
    path.write_bytes((first + newline.join(lines) + newline).encode(encoding))


@pytest.mark.parametrize(
    "how",
    [
        dict(delimiter=",", encoding="utf-8-sig"),  # Excel's CSV UTF-8: a byte-order mark
        dict(delimiter=";", encoding="cp1252", decimal=","),  # Excel's CSV in a comma locale
        dict(delimiter="\t", encoding="utf-16", newline="\n"),  # Excel's Unicode text
        dict(delimiter=";", encoding="utf-8", first="sep=;\r\n", decimal=","),
        dict(delimiter=",", encoding="utf-8", newline="\r"),  # old Mac line endings
    ],
)
def test_csv_as_spreadsheets_save_it(tmp_path, how, frcnn_log):
    for name in ("a.png", "b.png", "c.png"):
        save_image(tmp_path / name)
    _spreadsheet(tmp_path / "boxes.csv", SPREADSHEET_ROWS, **how)
    ds = read_dataset(tmp_path / "boxes.csv")
    assert ds.class_names == ["café", "dog"]
    a, b, c = ds.images  # b.png's only row is bad: it costs that row, its box
    assert [a.file_name, b.file_name, c.file_name] == ["a.png", "b.png", "c.png"]
    assert b.num_boxes == 0
    np.testing.assert_allclose(a.boxes, [[1, 2, 30.5, 40], [5, 5, 9, 9]])
    np.testing.assert_allclose(c.boxes, [[2, 2, 6, 7]])
    bad = sorted((p.annotation, p.message) for p in ds.problems if p.kind == "bad_row")
    assert [line for line, _ in bad] == ["line 4", "line 5"]
    assert "not numbers" in bad[0][1] and "sixty" in bad[1][1]
    assert all(p.file == "boxes.csv" for p in ds.problems)
    assert any("Windows-1252" in m for m in frcnn_log) == (how["encoding"] == "cp1252")


@pytest.mark.parametrize(
    "text, says",
    [
        ('{"images": {"1": {}}, "annotations": [], "categories": []}', "'images' is a dict"),
        ('{"images": [], "annotations": null, "categories": []}', "'annotations' is a NoneType"),
        ("[" * 100_000 + "]" * 100_000, "nested too deep"),
        ('{"images": [], "annotations": []}', "no 'categories' list"),
    ],
)
def test_a_coco_file_of_the_wrong_shape_names_the_file(tmp_path, text, says):
    from frcnn.evaluation.coco import read_coco_results

    path = tmp_path / "instances.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=says) as err:
        read_dataset(path)
    assert str(path) in str(err.value)
    if says == "nested too deep":  # the results reader too
        with pytest.raises(ValueError, match="not a COCO results file") as err:
            read_coco_results(path)
        assert str(path) in str(err.value)
