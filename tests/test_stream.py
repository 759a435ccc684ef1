"""Training from a streamed Hugging Face source (a local folder of parquet shards)."""

import csv
import itertools
import json
import math
import shutil

import numpy as np
import pytest
import torch
from conftest import two_ranks
from safetensors.torch import load_file
from test_train import TINY_RUN

from frcnn.cli import main
from frcnn.data.hf import HFStreamDataset, StreamOptions, first_rows, stream_rows, worker_skip
from frcnn.data.sources import read_dataset
from frcnn.data.synth import write_synth
from frcnn.engine.distributed import DistInfo
from frcnn.engine.stream import Streamed, batches_per_epoch
from frcnn.errors import InputError

datasets = pytest.importorskip("datasets")

CORRUPT_ROW = 5  # an image whose bytes PIL cannot decode
BAD_BOX_ROW = 6  # one box of zero width besides its good ones


def write_parquet(coco_json, out, shards: int) -> list[int]:
    """The images of a COCO dataset as parquet shards in the detection-datasets/coco schema
    (xywh boxes, 0-based ClassLabel categories), with one corrupt image and one empty box;
    returns the image ids in row order."""
    ds = read_dataset(coco_json)
    features = datasets.Features(
        {
            "image_id": datasets.Value("int64"),
            "image": datasets.Image(),
            "objects": {
                "bbox": datasets.List(datasets.List(datasets.Value("float32"), length=4)),
                "category": datasets.List(datasets.ClassLabel(names=ds.class_names)),
            },
        }
    )
    rows = []
    for i, rec in enumerate(ds.images):
        xywh = rec.boxes.copy()
        xywh[:, 2:] -= xywh[:, :2]
        boxes, labels = xywh.tolist(), (rec.labels - 1).tolist()
        if i == BAD_BOX_ROW:
            boxes, labels = [*boxes, [5.0, 5.0, 0.0, 9.0]], [*labels, 0]
        image = {"bytes": rec.path.read_bytes(), "path": None}
        if i == CORRUPT_ROW:
            image = {"bytes": b"\x89PNG\r\n\x1a\n not really", "path": None}
        rows.append(
            {"image_id": i + 1, "image": image, "objects": {"bbox": boxes, "category": labels}}
        )
    (out / "data").mkdir(parents=True)
    per = math.ceil(len(rows) / shards)
    for k in range(shards):
        part = rows[k * per : (k + 1) * per]
        table = {key: [r[key] for r in part] for key in part[0]}
        datasets.Dataset.from_dict(table, features=features).to_parquet(
            str(out / "data" / f"train-{k:05d}-of-{shards:05d}.parquet")
        )
    return [r["image_id"] for r in rows]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    write_synth(root / "synth", 14, 96, seed=0)
    write_parquet(root / "synth" / "annotations.json", root / "parquet", shards=3)
    return root / "parquet"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def ids(items) -> list[int | None]:
    return [None if item is None else int(item[1]["image_id"]) for item in items]


def test_ranks_read_disjoint_rows_held_out_rows_never_and_a_restart_continues(hub):
    source = f"hf:{hub}"
    first = first_rows(source, limit=2)
    assert [r.image_id for r in first.dataset.images] == [1, 2] and len(first.keys) == 2
    held = StreamOptions(buffer=4, held_out=first.keys)
    one_pass = ids(itertools.islice(iter(HFStreamDataset(source, held)), 12))
    # rows 3..14 once each (image 6 is the corrupt one: None), shuffled in a 4-row buffer
    assert sorted(i for i in one_pass if i is not None) == [3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14]
    assert one_pass.count(None) == 1 and one_pass != sorted(one_pass, key=lambda i: i or 6)
    # two ranks: disjoint halves of the same pass
    parts = [
        ids(itertools.islice(iter(HFStreamDataset(source, StreamOptions(rank=r, world_size=2))), 7))
        for r in (0, 1)
    ]
    assert set(parts[0]).isdisjoint(parts[1])
    assert sorted(i for i in parts[0] + parts[1] if i is not None) == [
        i for i in range(1, 15) if i != 6
    ]
    # two DataLoader workers of one rank: each every other row (3 files do not split in
    # 2), batches taken from them in turn: 3 batches of 2 from each, 12 different rows
    from frcnn.data.loader import build_loader

    loader = build_loader(HFStreamDataset(source, StreamOptions(batch_size=2)), 2, workers=2)
    batches = list(itertools.islice(iter(loader), 6))
    by_worker = [[int(t["image_id"]) for _, ts in batches[w::2] for t in ts] for w in (0, 1)]
    seen = by_worker[0] + by_worker[1]
    unreadable = sum(ts.unreadable for _, ts in batches)  # image 6, if among them
    assert len(seen) == len(set(seen)) and len(seen) + unreadable == 12
    # a resume after 2 batches of 3 gives the items an uninterrupted stream gives next,
    # across the end of the first pass into the second (shuffled anew)
    opts = StreamOptions(buffer=4, held_out=first.keys, batch_size=3)
    straight = ids(itertools.islice(iter(HFStreamDataset(source, opts)), 20))
    restart = StreamOptions(buffer=4, held_out=first.keys, batch_size=3, start_batches=2)
    assert ids(itertools.islice(iter(HFStreamDataset(source, restart)), 14)) == straight[6:]
    assert straight[12:20] != straight[0:8]  # the second pass is shuffled anew
    # with 2 workers, worker w made the batches w, w+2, ...: 3 items of the first 5 batches
    # of 4 went to worker 0 (batches 0, 2, 4), 2 to worker 1
    assert worker_skip(5, 4, 2, 0) == 12 and worker_skip(5, 4, 2, 1) == 8


def test_an_epoch_is_one_pass_or_the_steps_spread_over_the_epochs(hub, tmp_path):
    from frcnn.config import TrainConfig
    from frcnn.data.records import DetectionDataset

    cfg = TrainConfig()
    cfg.data.train, cfg.data.batch_size, cfg.schedule.epochs = "hf:x", 4, 3
    empty = DetectionDataset(tmp_path, ["a"], [])
    known = Streamed(empty, empty, frozenset({"k1", "k2"}), rows=102)
    # (102 rows - 2 held out) // (2 ranks x 4 per batch) = 12 batches each
    assert batches_per_epoch(cfg, known, DistInfo(rank=0, world_size=2, local_rank=0)) == 12
    unknown = Streamed(empty, empty, rows=None)
    with pytest.raises(InputError, match="schedule.steps=N"):
        batches_per_epoch(cfg, unknown, DistInfo())
    cfg.schedule.steps, cfg.optim.accumulate = 10, 2  # 20 batches over 3 epochs
    assert batches_per_epoch(cfg, unknown, DistInfo()) == 7
    # the rows of local files without reading them: parquet footers, arrow batches
    assert stream_rows(str(hub), "train") == 14
    arrow = tmp_path / "arrow"
    datasets.load_dataset(str(hub), split="train").save_to_disk(str(tmp_path / "saved"))
    (arrow / "data").mkdir(parents=True)
    for i, f in enumerate(sorted((tmp_path / "saved").glob("*.arrow"))):
        shutil.copy(f, arrow / "data" / f"train-{i:05d}.arrow")
    assert stream_rows(str(arrow), "train") == 14
    cfg.data.tile = 64
    with pytest.raises(InputError, match="data.tile"):
        from frcnn.engine.stream import load_streamed

        load_streamed(cfg)


def test_streamed_training_validates_on_held_out_rows_and_resumes_the_stream(
    hub, tmp_path, frcnn_log
):
    common = [
        "--data",
        f"hf:{hub}",
        "--epochs",
        "2",
        *TINY_RUN,
        "run.deterministic=true",
        "data.augment=default",
        "data.val_limit=2",
        "data.stream_buffer=4",
    ]
    assert main(["train", "--out", str(tmp_path / "straight"), *common]) == 0
    text = "\n".join(frcnn_log)
    assert "streamed, 14 rows" in text and "its first 2 rows) never trained on" in text
    # 12 rows per pass in 3 batches of 4: every epoch meets the corrupt row and the empty box
    assert text.count("1 invalid boxes of streamed rows dropped; 1 unreadable images skipped") == 2
    record = json.loads((tmp_path / "straight" / "val_split.json").read_text())
    assert record["limit"] == 2 and [i["image_id"] for i in record["images"]] == [1, 2]
    assert main(["eval", "--run", str(tmp_path / "straight")]) == 0
    # stopped after one epoch and resumed: the stream continues where it stopped
    split = ["--out", str(tmp_path / "split"), *common]
    assert main(["train", *split, "run.stop_after_epochs=1"]) == 0
    assert main(["train", "--resume", "--out", str(tmp_path / "split")]) == 0
    a = load_file(str(tmp_path / "straight" / "weights" / "last.safetensors"))
    b = load_file(str(tmp_path / "split" / "weights" / "last.safetensors"))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    with (tmp_path / "split" / "results.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    # a local --val: every row of the stream is trained on, 14 // 4 = 3 batches an epoch
    local = ["--val", str(hub.parent / "synth"), "--out", str(tmp_path / "local")]
    assert main(["train", *local, *common, "--epochs", "1"]) == 0
    log = (tmp_path / "local" / "log.txt").read_text()
    assert f"validation data {hub.parent / 'synth'}:" in log and "(11 images" in log


def test_data_check_and_convert_stream_a_part_at_a_time(hub, tmp_path, capsys, monkeypatch):
    import frcnn.cli.data as cli_data
    import frcnn.data.check as check_module

    parts, check = [], check_module.check_dataset

    def counted(ds, *args, **kwargs):
        parts.append(len(ds.images))
        return check(ds, *args, **kwargs)

    monkeypatch.setattr(cli_data, "STREAM_CHUNK", 4)
    monkeypatch.setattr(check_module, "check_dataset", counted)
    assert main(["data", "check", f"hf:{hub}", "--json"]) == 1  # the corrupt image is an error
    report = json.loads(capsys.readouterr().out)["splits"]["train"]
    assert parts == [4, 4, 4, 2]  # 14 rows, never more than 4 in memory
    assert report["images"] == {
        "in": 14,
        "used": 13,
        "without_boxes": report["images"]["without_boxes"],
        "skipped": {"image_corrupt": 1},
    }
    synth = read_dataset(hub.parent / "synth" / "annotations.json")
    lost = synth.images[CORRUPT_ROW].num_boxes  # dropped with their image
    assert report["boxes"]["dropped"] == {"box_degenerate": 1, "image_corrupt": lost}
    assert report["adds_up"]
    assert "image_id 6" in report["problems"][0]["message"]
    monkeypatch.setattr(check_module, "check_dataset", check)

    out = tmp_path / "coco"
    assert main(["data", "convert", f"hf:{hub}", "--to", "coco", str(out)]) == 0
    assert not (out / ".streamed").exists()
    written = read_dataset(out)
    original = {
        r.image_id: r for r in read_dataset(hub.parent / "synth" / "annotations.json").images
    }
    # every readable row once, by its image id, with its boxes and the image's own bytes
    assert sorted(r.file_name for r in written.images) == [
        f"images/{i:012d}.png" for i in range(1, 15) if i != CORRUPT_ROW + 1
    ]
    for rec in written.images:
        source = original[int(rec.file_name[7:19])]
        assert rec.path.read_bytes() == source.path.read_bytes()
        np.testing.assert_allclose(rec.boxes[: source.num_boxes], source.boxes, atol=1e-4)
        assert rec.labels[: source.num_boxes].tolist() == source.labels.tolist()


def test_two_ranks_with_a_loader_worker_each_train_from_one_stream(hub, tmp_path):
    out = tmp_path / "run"
    done = two_ranks(
        "-m",
        "frcnn",
        "train",
        "--data",
        f"hf:{hub}",
        "--epochs",
        "2",
        "--out",
        str(out),
        *TINY_RUN,
        "data.batch_size=2",
        "data.workers=1",
        "data.val_limit=2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    log = (out / "log.txt").read_text()
    # 12 training rows shared by 2 ranks in batches of 2: 3 batches a rank, every epoch
    # (the corrupt row is one of them, counted; the ranks add up their counts for the log)
    assert "streamed, 14 rows" in log and log.count("(11 images") == 2
    assert log.count("1 invalid boxes of streamed rows dropped") == 2
    assert log.count("1 unreadable images skipped") == 2
    with (out / "results.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
