"""Fault injection: hostile and careless inputs end in a clear error naming the file (or a
counted fix), never a traceback, a silent substitute or a runaway allocation."""

import json
import re

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import frcnn
from frcnn.cli import main
from frcnn.config import load_config
from frcnn.data import check_dataset, read_dataset, write_synth
from frcnn.demo import DEMO_MODEL
from frcnn.engine.model import load_initial_weights
from frcnn.io.yaml_file import parse_yaml

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b]\n"


def _run(capsys, *args):
    """Exit status and stderr of a CLI call; a traceback would escape as an exception."""
    status = main(list(args))
    return status, capsys.readouterr().err


def test_yaml_alias_bombs_are_refused_everywhere(tmp_path, capsys):
    with pytest.raises(ValueError, match="bomb.yaml: .*aliases"):
        parse_yaml(BOMB, "bomb.yaml")
    config = tmp_path / "config.yaml"
    config.write_text(BOMB)
    with pytest.raises(ValueError, match="config.yaml: .*aliases"):
        load_config(config)
    data = tmp_path / "yolo"
    data.mkdir()
    (data / "data.yaml").write_text("names: &n [a, b]\ntrain: images\nval: *n\n")
    status, err = _run(capsys, "data", "check", str(data / "data.yaml"))
    assert status == 2 and "data.yaml" in err and "aliases" in err


def test_invalid_data_yaml_names_the_file(tmp_path, capsys):
    (tmp_path / "data.yaml").write_text("names: [a, b\ntrain: images\n")
    status, err = _run(capsys, "data", "check", str(tmp_path / "data.yaml"))
    assert status == 2 and "data.yaml: not valid YAML" in err and "Traceback" not in err
    (tmp_path / "data.yaml").write_text("- just\n- a list\n")
    status, err = _run(capsys, "data", "check", str(tmp_path / "data.yaml"))
    assert status == 2 and "holds a mapping" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--epochs", "-1"], "--epochs must be >= 1, got -1"),
        (["--img-size", "0"], "--img-size must be >= 32 pixels, got 0"),
        (["--tile", "0"], "--tile must be >= 32 pixels"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--time-budget", "-5"], "--time-budget must be > 0 minutes"),
        (["optim.lr=0"], "optim.lr must be > 0"),
    ],
)
def test_nonsense_numbers_are_errors(tmp_path, capsys, args, message):
    status, err = _run(
        capsys, "train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), *args
    )
    assert status == 2 and message in err
    assert not (tmp_path / "r").exists()


def test_resume_of_a_missing_run_says_so_and_creates_nothing(tmp_path, capsys):
    out = tmp_path / "nothing-here"
    status, err = _run(capsys, "train", "--resume", "--out", str(out))
    assert status == 2 and "last.state.pt does not exist" in err
    assert not out.exists()


class _Payload:
    """A pickle that would create a file if it were ever unpickled without weights_only."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_hostile_training_state_is_one_line_and_runs_nothing(tmp_path, capsys):
    import pickle

    write_synth(tmp_path / "d", 4, 64, seed=0)
    out, marker = tmp_path / "run", tmp_path / "pwned"
    (out / "weights").mkdir(parents=True)
    (out / "weights" / "last.state.pt").write_bytes(pickle.dumps({"epoch": _Payload(marker)}))
    status, err = _run(
        capsys, "train", "--resume", "--data", str(tmp_path / "d"), "--out", str(out)
    )
    assert status == 2 and "not a training state frcnn can resume from" in err
    assert len(err.strip().splitlines()) == 1 and not marker.exists()


@pytest.fixture
def model_file(tmp_path, tiny_model):
    return frcnn.save_model(tiny_model, tmp_path / "m.safetensors", class_names=["a", "b"])


def test_weights_files_are_told_apart_by_content(tmp_path, tiny_model, model_file):
    pth = tmp_path / "model.safetensors"  # a torch file with a misleading name
    torch.save(tiny_model.state_dict(), pth)
    with pytest.raises(ValueError, match="is a PyTorch checkpoint .*convert-weights"):
        frcnn.load_model(pth)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        frcnn.load_model(empty)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(model_file.read_bytes()[:5000])
    with pytest.raises(ValueError, match="is truncated"):
        frcnn.load_model(cut)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(ValueError, match="neither a safetensors nor a PyTorch file"):
        frcnn.load_model(text)


def test_training_can_start_from_a_pth_state_dict(tmp_path, tiny_model):
    pth = tmp_path / "start.pth"
    torch.save(tiny_model.state_dict(), pth)
    torch.manual_seed(1)
    fresh = frcnn.build_model("resnet18_fpn", 3, **DEMO_MODEL)
    load_initial_weights(fresh, str(pth))
    torch.testing.assert_close(fresh.state_dict(), tiny_model.state_dict())


def _forge(model_file, tmp_path, **config_changes):
    with safe_open(str(model_file), framework="pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    config = {**json.loads(meta["config"]), **config_changes}
    forged = tmp_path / "forged.safetensors"
    save_file(state, str(forged), metadata={**meta, "config": json.dumps(config)})
    return forged


def test_forged_metadata_is_refused_before_anything_is_built(tmp_path, model_file):
    forged = _forge(model_file, tmp_path, fpn_channels=400_000)
    with pytest.raises(ValueError, match="fpn_channels=400000 is not valid"):
        frcnn.load_model(forged)
    with pytest.raises(ValueError, match="min_size='big' is not valid"):
        frcnn.load_model(_forge(model_file, tmp_path, min_size="big"))
    with pytest.raises(ValueError, match=r"unknown model configuration keys \['evil'\]"):
        frcnn.load_model(_forge(model_file, tmp_path, evil=1))
    with pytest.raises(ValueError, match="do not fit the stored configuration"):
        frcnn.load_model(_forge(model_file, tmp_path, representation_size=32))


def _coco(tmp_path, n=6, **kw):
    write_synth(tmp_path, n, 64, seed=0, **kw)
    ann = tmp_path / "annotations.json"
    return ann, json.loads(ann.read_text())


def test_duplicate_category_id_is_an_error(tmp_path):
    ann, data = _coco(tmp_path)
    data["categories"].append({"id": data["categories"][0]["id"], "name": "phantom"})
    ann.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="category ids used more than once.*phantom"):
        read_dataset(ann)


def test_one_missing_image_is_reported_alone(tmp_path):
    ann, data = _coco(tmp_path)
    for im in data["images"]:  # bare names; the images sit in images/
        im["file_name"] = im["file_name"].removeprefix("images/")
    ann.write_text(json.dumps(data))
    (tmp_path / "images" / "000001.png").unlink()
    ds, report = check_dataset(read_dataset(ann), "header")
    assert report.problems.counts() == {"image_missing": 1}
    assert len(ds.images) == 5


def test_predict_on_nothing_says_so(tmp_path, model_file, capsys, caplog):
    (tmp_path / "empty").mkdir()
    status, err = _run(capsys, "predict", "--weights", str(model_file), str(tmp_path / "empty"))
    assert status == 2 and "no images to predict on" in err
    write_synth(tmp_path / "some", 1, 64, seed=0)
    with caplog.at_level("WARNING", logger="frcnn"):
        frcnn.predict(model_file, [str(tmp_path / "empty"), str(tmp_path / "some" / "images")])
    assert any("no images" in r.getMessage() and "empty" in r.getMessage() for r in caplog.records)


def test_non_finite_results_are_named(tmp_path, capsys):
    ann, data = _coco(tmp_path)
    results = [{"image_id": 2, "category_id": 1, "bbox": [1, 2, float("nan"), 4], "score": 0.9}]
    (tmp_path / "res.json").write_text(json.dumps(results))
    status, err = _run(
        capsys, "eval", "--data", str(ann), "--predictions", str(tmp_path / "res.json")
    )
    assert status == 2 and "image_id 2 has 1 result(s) with a non-finite box" in err
    (tmp_path / "res.json").write_text(json.dumps([{"image_id": 2}]))
    status, err = _run(
        capsys, "eval", "--data", str(ann), "--predictions", str(tmp_path / "res.json")
    )
    assert status == 2 and "not a COCO results file" in err


def test_eval_refuses_a_model_of_other_classes(tmp_path, model_file, capsys):
    ann, _ = _coco(tmp_path / "data")  # five classes; the model knows "a", "b"
    status, err = _run(capsys, "eval", "--weights", str(model_file), "--data", str(ann))
    assert status == 2 and "model classes ['a', 'b'] differ" in err and "--allow-mismatch" in err
    args = ["eval", "--weights", str(model_file), "--data", str(ann), "--allow-mismatch"]
    assert _run(capsys, *args)[0] == 0


def test_truncated_images_are_caught_by_the_fast_check(tmp_path):
    from PIL import Image

    from frcnn.data.images import truncation

    noise = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "a.jpg", quality=90)
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert truncation(tmp_path / "a.jpg") is None
    assert truncation(tmp_path / "cut.jpg") == "truncated JPEG (no end-of-image marker)"
    ann, _ = _coco(tmp_path / "coco")
    png = tmp_path / "coco" / "images" / "000002.png"
    png.write_bytes(png.read_bytes()[:-200])
    ds, report = check_dataset(read_dataset(ann), "header")
    assert report.problems.counts() == {"image_corrupt": 1} and len(ds.images) == 5
    assert "truncated" in str(next(iter(report.problems)))
    # a JPEG whose header still parses: only its missing end marker tells
    (tmp_path / "coco" / "images" / "000003.jpg").write_bytes((tmp_path / "cut.jpg").read_bytes())
    data = json.loads(ann.read_text())
    data["images"][2].update(file_name="images/000003.jpg", width=64, height=48)
    ann.write_text(json.dumps(data))
    _, report = check_dataset(read_dataset(ann), "header")
    assert report.problems.counts() == {"image_corrupt": 2}
    assert "truncated JPEG" in str(list(report.problems)[1])


def test_an_extreme_aspect_image_is_reported(tmp_path):
    from PIL import Image

    ann, data = _coco(tmp_path)
    Image.new("RGB", (1280, 20)).save(tmp_path / "images" / "000003.png")
    data["images"][2].update(width=1280, height=20)
    ann.write_text(json.dumps(data))
    ds, report = check_dataset(read_dataset(ann), "header")
    assert report.problems.counts() == {"image_extreme_aspect": 1}
    assert "1280x20 is more than 32:1" in str(next(iter(report.problems)))


def test_an_image_damaged_after_the_check_is_skipped_and_counted(tmp_path):
    from frcnn.data.loader import DetectionTorchDataset, build_loader

    ann, _ = _coco(tmp_path, n=3)
    ds, _ = check_dataset(read_dataset(ann), "header")
    (tmp_path / "images" / "000002.png").write_bytes(b"not a png any more")
    images, targets = next(iter(build_loader(DetectionTorchDataset(ds), batch_size=3)))
    assert len(images) == len(targets) == 2 and targets.unreadable == 1


def test_predict_skips_bad_files_and_checks_the_output_folder_first(
    tmp_path, model_file, capsys, caplog
):
    write_synth(tmp_path / "good", 2, 64, seed=0)
    folder = tmp_path / "good" / "images"
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("hello")
    with caplog.at_level("WARNING", logger="frcnn"):
        status, _ = _run(
            capsys,
            "predict",
            "--weights",
            str(model_file),
            str(folder),
            "--out",
            str(tmp_path / "pred"),
        )
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert status == 0 and "skipped" in logged and "text.png" in logged
    assert "2 of 4 images skipped" in logged
    assert len(json.loads((tmp_path / "pred" / "predictions.json").read_text())) == 2
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    status, err = _run(
        capsys, "predict", "--weights", str(model_file), str(folder), "--out", str(blocker / "out")
    )
    assert status == 2 and "cannot write to the output folder" in err


def test_a_fatal_training_error_is_one_line_and_in_the_run_log(tmp_path, capsys):
    from test_train import TINY_RUN

    write_synth(tmp_path / "train", 4, 96, seed=0)
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(tmp_path / "train"),
        "--out",
        str(out),
        *TINY_RUN,
        "optim.lr=1e30",
    ]
    status, err = _run(capsys, *args)
    assert status == 2 and "error: non-finite loss" in err and "Traceback" not in err
    assert "error: non-finite loss" in (out / "log.txt").read_text()
    with pytest.raises(FloatingPointError):
        main(["--debug", *args])


def test_convert_never_merges_images_that_share_a_name(tmp_path):
    from PIL import Image

    from frcnn.data.write import write_dataset

    write_synth(tmp_path / "train", 3, 64, seed=0)
    write_synth(tmp_path / "val", 2, 64, seed=1)  # 000001.png, 000002.png in both splits
    splits = {s: read_dataset(tmp_path / s / "annotations.json") for s in ("train", "val")}
    write_dataset(splits, tmp_path / "voc", "voc")
    assert len(list((tmp_path / "voc" / "JPEGImages").iterdir())) == 5
    assert len(list((tmp_path / "voc" / "Annotations").iterdir())) == 5
    renamed = (tmp_path / "voc" / "renamed.csv").read_text().splitlines()
    assert renamed[0] == "split,source,output" and len(renamed) == 3
    back = {s: len(read_dataset(tmp_path / "voc", split=s).images) for s in ("train", "val")}
    assert back == {"train": 3, "val": 2}
    # x.png and x.jpg in one split would share labels/x.txt
    ann = tmp_path / "train" / "annotations.json"
    data = json.loads(ann.read_text())
    Image.open(tmp_path / "train" / "images" / "000002.png").save(
        tmp_path / "train" / "images" / "000001.jpg"
    )
    data["images"][1]["file_name"] = "images/000001.jpg"
    ann.write_text(json.dumps(data))
    write_dataset({"train": read_dataset(ann)}, tmp_path / "yolo", "yolo")
    labels = sorted(p.name for p in (tmp_path / "yolo" / "labels" / "train").iterdir())
    assert labels == ["000001.txt", "000001__2.txt", "000003.txt"]
    ds, _ = check_dataset(read_dataset(tmp_path / "yolo"), "header")
    assert len(ds.images) == 3 and sum(r.num_boxes for r in ds.images) == sum(
        len([a for a in data["annotations"] if a["image_id"] == i]) for i in (1, 2, 3)
    )


def test_one_bad_coco_item_costs_only_that_item(tmp_path):
    ann, data = _coco(tmp_path, empty_prob=0.0)
    n_images, n_boxes = len(data["images"]), len(data["annotations"])
    data["annotations"][0]["bbox"] = ["ten", 2, 3, 4]
    data["annotations"][1]["id"] = "abc"
    data["images"][5]["id"] = "six"
    ann.write_text(json.dumps(data))
    ds, report = check_dataset(read_dataset(ann), "header")
    counts = report.problems.counts()
    assert counts["bad_row"] >= 3  # the bbox, the id, the image entry (and its orphans)
    messages = " ".join(str(p) for p in report.problems)
    assert "bbox ['ten', 2, 3, 4] is not" in messages and "annotation id 'abc'" in messages
    assert "image entry 5: id 'six' is not an integer" in messages
    assert len(ds.images) == n_images - 1
    assert report.images_in == n_images and report.boxes_in == n_boxes
    assert report.images_used + sum(report.images_skipped.values()) == report.images_in


def test_broken_coco_files_name_the_file(tmp_path, capsys):
    ann, data = _coco(tmp_path)
    ann.write_text("{not json")
    status, err = _run(capsys, "data", "check", str(ann))
    assert status == 2 and "annotations.json: not valid JSON" in err
    data["categories"][0]["id"] = "one"
    ann.write_text(json.dumps(data))
    status, err = _run(capsys, "data", "check", str(ann))
    assert status == 2 and "annotations.json: category" in err and "integer id" in err


def test_one_malformed_voc_file_costs_only_that_file(tmp_path):
    from frcnn.data.write import write_dataset

    write_synth(tmp_path / "coco", 4, 64, seed=0, empty_prob=0.0)
    write_dataset({"train": read_dataset(tmp_path / "coco")}, tmp_path / "voc", "voc")
    (tmp_path / "voc" / "classes.txt").unlink()
    xmls = sorted((tmp_path / "voc" / "Annotations").glob("*.xml"))
    xmls[0].write_text("<annotation><object><name>oops")
    ds, report = check_dataset(read_dataset(tmp_path / "voc"), "header")
    assert len(ds.images) == 3 and report.images_skipped == {"bad_row": 1}
    assert "cannot read annotation file" in str(next(iter(report.problems)))


SWEEP = [
    ("data check {missing}", "frcnn data check: error: dataset not found"),
    ("data check {empty}", "cannot tell the dataset format"),
    ("data check {csv}", "no 'image_path' column"),
    ("data convert {missing} --to coco {out}", "dataset not found"),
    ("anchors {empty}", "cannot tell the dataset format"),
    ("train --data {missing} --out {out}", "dataset not found"),
    ("train --config {missing}.yaml", "no such file, and no recipe of that name"),
    ("train --data {empty} --model nosuch --out {out}", "error:"),
    ("eval --weights {missing} --data {empty}", "error:"),
    ("predict --weights {missing} {png}", "does not exist"),
    ("predict --weights {csv} {png}", "neither a safetensors nor a PyTorch file"),
    ("convert-weights {missing} {out}.safetensors", "weights file not found"),
    ("convert-weights {csv} {out}.safetensors", "neither a safetensors nor a PyTorch file"),
    ("convert-weights {png} {out}.safetensors", "neither a safetensors nor a PyTorch file"),
    ("data check hf:", "expected hf:NAME[:SPLIT]"),
]


@pytest.mark.parametrize(("command", "message"), SWEEP)
def test_user_errors_end_in_one_line_without_a_traceback(tmp_path, capsys, command, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.csv").write_text("a,b\n")
    (tmp_path / "x.png").write_text("not an image")
    paths = dict(
        missing=tmp_path / "missing",
        empty=tmp_path / "empty",
        csv=tmp_path / "bad.csv",
        png=tmp_path / "x.png",
        out=tmp_path / "out",
    )
    status, err = _run(capsys, *command.format(**paths).split())
    lines = err.strip().splitlines()
    assert status == 2 and message in lines[-1] and lines[-1].startswith("frcnn ")
    assert "Traceback" not in err


class _Exploit:
    """A pickle that would create a file when unpickled with weights_only=False."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_hostile_pickle_never_runs(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "payload": _Exploit(marker)}, evil)
    for args in (
        ["convert-weights", str(evil), str(tmp_path / "o.safetensors")],
        ["predict", "--weights", str(evil), str(tmp_path)],
    ):
        status, err = _run(capsys, *args)
        assert status == 2 and "Traceback" not in err
    assert not marker.exists()


def test_predict_skips_an_extreme_aspect_image_unless_tiled(tmp_path, model_file, caplog):
    from PIL import Image

    Image.new("RGB", (1280, 20)).save(tmp_path / "strip.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "square.png")
    with caplog.at_level("WARNING", logger="frcnn"):
        results = frcnn.predict(
            model_file, [str(tmp_path / "strip.png"), str(tmp_path / "square.png")]
        )
    assert [p.path.name for p in results] == ["square.png"]
    assert any(
        "1280x20 is more than 32:1; predict it with --tile" in r.getMessage()
        for r in caplog.records
    )
    tiled = frcnn.predict(model_file, [str(tmp_path / "strip.png")], tile=64)
    assert [p.path.name for p in tiled] == ["strip.png"]


def test_a_safetensors_header_length_starting_with_0x80_is_not_a_pickle(tmp_path):
    import struct

    from frcnn.io.file_kind import file_kind

    # a header of 0x4180 bytes: the length's first byte is 0x80, as a pickle's first byte
    header = b'{"__metadata__":{"k":"' + b"x" * (0x4180 - 25) + b'"}}'
    assert len(header) == 0x4180
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    assert path.read_bytes()[0] == 0x80 and file_kind(path) == "safetensors"
    torch.save({"a": torch.zeros(1)}, tmp_path / "t.pt")
    assert file_kind(tmp_path / "t.pt") == "torch"
    (tmp_path / "p.pkl").write_bytes(b"\x80\x02}q\x00.")  # a plain protocol-2 pickle
    assert file_kind(tmp_path / "p.pkl") == "torch"


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"image_id": 999, "category_id": 1}, "1 image ids the data does not have"),
        ({"image_id": 1, "category_id": 7}, r"category ids \[7\] are not classes of the data"),
    ],
)
def test_results_made_for_other_data_are_refused_by_every_reader(tmp_path, capsys, result, message):
    write_synth(tmp_path / "d", 3, 64, seed=0)
    gt = json.loads((tmp_path / "d" / "annotations.json").read_text())
    first = gt["images"][0]["id"]
    rows = [{"image_id": first, "category_id": 1, "bbox": [1, 1, 9, 9], "score": 0.9}]
    rows.append({**rows[0], **result, "image_id": first if result["image_id"] == 1 else 999})
    (tmp_path / "r.json").write_text(json.dumps(rows))
    data, preds = str(tmp_path / "d"), str(tmp_path / "r.json")
    for command in (
        ["eval", "--data", data, "--predictions", preds],
        ["label-issues", "--data", data, "--predictions", preds, "--out", str(tmp_path / "li")],
    ):
        status, err = _run(capsys, *command)
        assert status == 2 and re.search(message, err), (command, err)


def test_images_the_checks_skip_are_counted_not_dropped_silently(tmp_path, capsys, frcnn_log):
    write_synth(tmp_path / "d", 4, 64, seed=0)
    gt = json.loads((tmp_path / "d" / "annotations.json").read_text())
    (tmp_path / "d" / gt["images"][1]["file_name"]).write_bytes(b"not an image")
    first = gt["images"][0]["id"]
    rows = [{"image_id": first, "category_id": 1, "bbox": [1, 1, 9, 9], "score": 0.9}]
    (tmp_path / "r.json").write_text(json.dumps(rows))
    args = [
        "label-issues",
        "--data",
        str(tmp_path / "d"),
        "--predictions",
        str(tmp_path / "r.json"),
    ]
    status, _ = _run(capsys, *args, "--out", str(tmp_path / "li"))
    assert status == 0
    assert any("1 of 4 images left out" in m for m in frcnn_log), frcnn_log


def test_an_image_damaged_after_the_check_costs_only_itself_in_galleries_and_calibration(
    tmp_path, frcnn_log
):
    from frcnn.data.loader import readable_images
    from frcnn.deploy.quantize import read_calibration_images
    from frcnn.evaluation.gallery import write_worst_images

    ann, _ = _coco(tmp_path, n=3)
    ds, _ = check_dataset(read_dataset(ann), "header")
    (tmp_path / "images" / "000002.png").write_bytes(b"not a png any more")
    found = readable_images(ds.images, "the test")
    assert [i for i, _ in found] == [0, 2]
    assert any(
        "1 of 3 images could not be read and were left out of the test" in m for m in frcnn_log
    )
    assert len(read_calibration_images(ann, 3, None)) == 2  # the int8 export calibrates on 2
    empty = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}
    preds = {int(r.image_id): dict(empty) for r in ds.images}
    shown = write_worst_images(ds, preds, 0.5, tmp_path / "worst.jpg", n=3)
    assert len(shown) == 3 and (tmp_path / "worst.jpg").is_file()  # drawn from the two others
