"""Two CPU processes with gloo under torchrun train a tiny model; rank 0's checkpoint scores."""

import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import TINY, two_ranks
from test_train import TINY_RUN

import frcnn
from frcnn.data.synth import write_synth


def test_two_process_gloo_training(tmp_path):
    write_synth(tmp_path / "train", 8, 96, seed=0)
    write_synth(tmp_path / "val", 4, 96, seed=1)
    out = tmp_path / "run"
    done = two_ranks(
        "-m",
        "frcnn",
        "train",
        "--data",
        str(tmp_path / "train"),
        "--val",
        str(tmp_path / "val"),
        "--epochs",
        "1",
        "--out",
        str(out),
        *TINY_RUN,
        "data.batch_size=2",
        "schedule.time_budget=5",  # exercises the per-step budget broadcast across ranks
    )
    assert done.returncode == 0, done.stderr[-3000:]
    model = frcnn.load_model(out / "weights" / "last.safetensors")
    assert model.class_names[0] == "rectangle"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["AP50"] <= 1
    assert not (tmp_path / "run2").exists()  # only rank 0 created and wrote the run folder
    result = frcnn.evaluate(out / "weights" / "last.safetensors", tmp_path / "val")
    assert 0 <= result.coco["AP50"] <= 1


def test_syncbn_is_batchnorm_converted_only_for_multi_gpu_runs(frcnn_log):
    from frcnn.engine.distributed import DistInfo, sync_batch_norms

    model = frcnn.build_model(
        "resnet18_fpn", 3, norm="syncbn", fpn_channels=16, representation_size=32
    )
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    single = sync_batch_norms(model, "syncbn", DistInfo(), torch.device("cpu"))
    assert single is model and not any(
        isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules()
    )
    two = DistInfo(rank=0, world_size=2)
    on_cpu = sync_batch_norms(model, "syncbn", two, torch.device("cpu"))
    assert on_cpu is model and any("needs GPUs" in m for m in frcnn_log)
    on_gpus = sync_batch_norms(model, "syncbn", two, torch.device("cuda", 0))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in on_gpus.modules())
    assert on_gpus.config["norm"] == "syncbn" and hasattr(on_gpus, "class_names") is hasattr(
        model, "class_names"
    )
    # timm's BatchNorm-with-activation layers keep their activation when synchronised
    timm = pytest.importorskip("timm")
    effnet = frcnn.build_model("efficientnet_b3_fpn", 3, norm="syncbn")
    synced = sync_batch_norms(effnet, "syncbn", two, torch.device("cuda", 0))
    layers = [m for m in synced.modules() if isinstance(m, torch.nn.SyncBatchNorm)]
    assert layers and all(isinstance(m, timm.layers.SyncBatchNormAct) for m in layers)
    assert isinstance(layers[0].act, torch.nn.SiLU)


# What each rank runs under torchrun: the same commands as one process, one after another
# (each joins and leaves the job's process group).
_SHARED = """
import sys
from frcnn.cli import main
w, data, out = sys.argv[1:4]
opts = ["--conf", "0.05", "--batch-size", "3"]
common = ["--weights", w, *opts]
assert main(["eval", *common, "--data", data, "--out", out + "/eval"]) == 0
assert main(["predict", *common, data + "/images", "--out", out + "/pred"]) == 0
assert main(["predict", *common, data + "/images", "--tile", "64", "--overlap", "0.25",
             "--out", out + "/tiled"]) == 0
assert main(["calibrate", *common, "--data", data, "--out", out + "/cal.safetensors"]) == 0
assert main(["ensemble", "--weights", w, w, *opts, "--data", data, "--out", out + "/wbf"]) == 0
"""


def _label_with_own_detections(weights, data):
    """The data's boxes replaced by the model's three best detections per image, every
    other one shifted by half its size: a random model scores some right, some wrong."""
    coco = json.loads((data / "annotations.json").read_text())
    found = frcnn.predict(weights, [data / im["file_name"] for im in coco["images"]], conf=0.05)
    coco["annotations"] = []
    for image, p in zip(coco["images"], found, strict=True):
        for k, ((x1, y1, x2, y2), label) in enumerate(zip(p.boxes[:3], p.labels[:3], strict=True)):
            dx = (x2 - x1) / 2 if k % 2 else 0.0
            box = [float(x1 + dx), float(y1), float(x2 - x1), float(y2 - y1)]
            n = len(coco["annotations"]) + 1
            coco["annotations"].append(
                {
                    "id": n,
                    "image_id": image["id"],
                    "category_id": int(label),
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    (data / "annotations.json").write_text(json.dumps(coco))


def _merged(path):
    return json.loads((path / "predictions.json").read_text())


def test_eval_and_predict_shared_by_two_ranks_equal_one_process(tmp_path, request):
    """Five images on two ranks (a batch of 3 and one of 2, none twice): rank 0 alone
    writes, and the metrics (of one model and of a WBF ensemble), the fitted calibration
    and the merged predictions, tiled or not, are those of one process (bit for bit with
    one thread each, as torchrun sets: with more a convolution may sum in another order)."""
    from frcnn.cli import main
    from frcnn.inference.ranks import inference_ranks

    data = tmp_path / "val"
    write_synth(data, 5, 96, seed=4)
    torch.manual_seed(0)
    names = ["rectangle", "ellipse", "triangle", "cross", "ring"]
    model = frcnn.build_model("resnet18_fpn", 6, **TINY, box_score_thresh=0.0)
    weights = frcnn.save_model(model, tmp_path / "m.safetensors", class_names=names)
    _label_with_own_detections(weights, data)  # so that some detections are right
    script = tmp_path / "shared.py"
    script.write_text(_SHARED)
    done = two_ranks(str(script), str(weights), str(data), str(tmp_path / "two"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 ranks predicted 5 images (rank 0: 3, rank 1: 2)" in done.stderr  # batches 3, 2
    assert inference_ranks().world_size == 1  # this process: alone
    one = tmp_path / "one"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    opts = ["--conf", "0.05", "--batch-size", "3"]
    common = ["--weights", str(weights), *opts]
    assert main(["eval", *common, "--data", str(data), "--out", str(one / "eval")]) == 0
    assert main(["predict", *common, str(data / "images"), "--out", str(one / "pred")]) == 0
    tiled = ["--tile", "64", "--overlap", "0.25", "--out", str(one / "tiled")]
    assert main(["predict", *common, str(data / "images"), *tiled]) == 0
    cal = ["--data", str(data), "--out", str(one / "cal.safetensors")]
    assert main(["calibrate", *common, *cal]) == 0
    pair = ["--weights", str(weights), str(weights), *opts]
    assert main(["ensemble", *pair, "--data", str(data), "--out", str(one / "wbf")]) == 0
    two = tmp_path / "two"
    for kind in ("eval", "wbf"):
        metrics = [json.loads((d / kind / "metrics.json").read_text()) for d in (one, two)]
        assert metrics[0] == metrics[1]
    fitted = [frcnn.load_model(d / "cal.safetensors").calibration for d in (one, two)]
    assert fitted[0]["x"] == fitted[1]["x"] and fitted[0]["y"] == fitted[1]["y"]
    for kind in ("pred", "tiled"):
        merged = _merged(two / kind)
        assert merged == _merged(one / kind) and len(merged) == 5
        assert sum(len(p["detections"]) for p in merged) > 0


_KILLED = """
import os, signal, sys
import frcnn

class KillRank1(frcnn.Callback):  # the first attempt loses rank 1 in the second epoch
    def after_step(self, state):
        first = os.environ["TORCHELASTIC_RESTART_COUNT"] == "0"
        if first and state.info.rank == 1 and state.epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)

frcnn.train(None, sys.argv[2:], [KillRank1()], **{"run.out": sys.argv[1]})
"""


def test_a_killed_rank_restarts_the_job_which_resumes_from_its_checkpoint(tmp_path):
    write_synth(tmp_path / "train", 8, 96, seed=0)
    script, out = tmp_path / "killed.py", tmp_path / "run"
    script.write_text(_KILLED)
    done = two_ranks(
        str(script),
        str(out),
        *TINY_RUN,
        "data.batch_size=2",
        f"data.train={tmp_path / 'train'}",
        "data.val_split=0.25",
        "schedule.epochs=2",
        launch=("--max-restarts", "1"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"torchrun restarted the job: resuming {out} from its last checkpoint" in done.stderr
    with (out / "results.csv").open() as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2]
    assert (out / "weights" / "last.safetensors").is_file()
    assert not (tmp_path / "run2").exists()  # the same run, not a new one
    assert "resumed from" in done.stderr and "at epoch 2" in done.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_train_the_weights_of_one_node_with_two_processes(tmp_path):
    """Two "nodes" on 127.0.0.1 (c10d rendezvous, one process each) and one node with two
    processes train the same weights, bit for bit."""
    write_synth(tmp_path / "train", 8, 96, seed=0)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    train = ["-m", "frcnn", "train", "--data", str(tmp_path / "train"), "--epochs", "2"]
    train += [*TINY_RUN, "data.batch_size=2", "data.val_split=0.25"]
    launch = [sys.executable, "-m", "torch.distributed.run"]
    port = _free_port()
    nodes = [
        [*launch, "--nnodes", "2", "--node-rank", str(k), "--nproc-per-node", "1"]
        + ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "t"]
        + [*train, "--out", str(tmp_path / "nodes")]
        for k in (0, 1)
    ]
    running = [subprocess.Popen(c, env=env, stderr=subprocess.PIPE, text=True) for c in nodes]
    errors = [p.communicate(timeout=600)[1] for p in running]
    assert [p.returncode for p in running] == [0, 0], errors[0][-2000:] + errors[1][-2000:]
    one = [*launch, "--standalone", "--nproc-per-node", "2", *train, "--out", str(tmp_path / "one")]
    done = subprocess.run(one, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = (
        frcnn.load_model(tmp_path / d / "weights" / "last.safetensors") for d in ("nodes", "one")
    )
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not (tmp_path / "nodes2").exists()  # one of the two wrote the run


def test_kfold_under_torchrun_trains_each_fold_on_both_ranks_and_shares_its_prediction(
    tmp_path,
):
    write_synth(tmp_path / "data", 8, 96, seed=0)
    out = tmp_path / "kf"
    done = two_ranks(
        "-m",
        "frcnn",
        "kfold",
        "--data",
        str(tmp_path / "data"),
        "--folds",
        "2",
        "--epochs",
        "1",
        "--out",
        str(out),
        *TINY_RUN,
        "data.batch_size=2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # folds of 5 and 3 held-out images, predicted in batches of 2 taken in turn: rank 0
    # the batches [1, 2] and [5] of the first, [1, 2] of the second
    log = (out / "log.txt").read_text()
    assert "5, 3 images held out per fold" in log
    assert "2 ranks predicted 5 images (rank 0: 3, rank 1: 2)" in log
    assert "2 ranks predicted 3 images (rank 0: 2, rank 1: 1)" in log
    with (out / "summary.csv").open() as f:
        assert [r["fold"] for r in csv.DictReader(f)][:2] == ["1", "2"]
    oof = json.loads((out / "oof_predictions.json").read_text())
    assert len(oof["images"]) == 8
    assert not (tmp_path / "kf2").exists()  # rank 0 alone chose and wrote the folder
    assert "out-of-fold (all 8 images)" in done.stdout
