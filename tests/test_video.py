"""Video through predict: every frame predicted, an annotated copy, per-frame detections."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY

import frcnn
from frcnn.cli import main

cv2 = pytest.importorskip("cv2")


def _video(path, frames=7, fps=10.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (128, 96))
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((96, 128, 3), 90, np.uint8)
        frame[20:60, 10 + 8 * i : 50 + 8 * i] = (40, 40, 220)
        writer.write(frame)
    writer.release()
    return path


def test_video_round_trips_through_predict_with_an_image(tmp_path, capsys):
    torch.manual_seed(0)
    model = frcnn.build_model("resnet18_fpn", 3, **TINY)
    weights = frcnn.save_model(model, tmp_path / "m.safetensors", class_names=["a", "b"])
    video = _video(tmp_path / "clip.mp4")
    image = tmp_path / "still.png"
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(image)
    out = tmp_path / "pred"
    args = ["predict", "--weights", str(weights), str(video), str(image), "--out", str(out)]
    assert main([*args, "--conf", "0.0"]) == 0
    printed = capsys.readouterr().out
    assert "clip.mp4: 7 frames" in printed and "still.png:" in printed
    frames = json.loads((out / "clip.frames.json").read_text())
    assert frames["fps"] == pytest.approx(10.0) and len(frames["frames"]) == 7
    assert [f["frame"] for f in frames["frames"]] == list(range(7))
    assert frames["frames"][3]["time_s"] == pytest.approx(0.3)
    # the per-frame detections equal the model's on the decoded frames
    capture = cv2.VideoCapture(str(video))
    ok, first = capture.read()
    capture.release()
    expected = frcnn.predict(weights, cv2.cvtColor(first, cv2.COLOR_BGR2RGB), conf=0.0)[0]
    first_frame = frames["frames"][0]["detections"]
    assert len(first_frame) == len(expected.scores) > 0
    np.testing.assert_allclose([d["box"] for d in first_frame], expected.boxes, atol=0.01)
    np.testing.assert_allclose([d["score"] for d in first_frame], expected.scores, atol=1e-5)
    assert [d["label"] for d in first_frame] == expected.labels.tolist()
    annotated = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == 7
    annotated.release()
    assert json.loads((out / "predictions.json").read_text())[0]["image"].endswith("still.png")
    # the Python API returns one prediction per frame after the images
    found = frcnn.predict(weights, [str(video)], conf=0.0)
    assert [p.path.name for p in found][:2] == ["clip.mp4#frame0", "clip.mp4#frame1"]
    assert len(found) == 7


def test_an_unreadable_video_is_a_clear_error(tmp_path, capsys):
    torch.manual_seed(0)
    weights = frcnn.save_model(
        frcnn.build_model("resnet18_fpn", 3, **TINY),
        tmp_path / "m.safetensors",
        class_names=["a", "b"],
    )
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    assert main(["predict", "--weights", str(weights), str(bad)]) == 2
    assert "cannot open the video" in capsys.readouterr().err


def test_a_truncated_video_says_how_many_frames_it_read(tmp_path, frcnn_log):
    torch.manual_seed(0)
    weights = frcnn.save_model(
        frcnn.build_model("resnet18_fpn", 3, **TINY), tmp_path / "m.safetensors"
    )
    whole = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    rng = np.random.default_rng(0)
    for _ in range(20):
        writer.write(rng.integers(0, 255, (64, 64, 3), np.uint8))
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # the header says 20
    found = frcnn.predict(weights, [str(cut)], out=tmp_path / "out")
    read = len(found)
    assert 0 < read < 20 and (tmp_path / "out" / "cut.frames.json").is_file()
    assert any(f"read {read} of the 20 frames the file announces" in m for m in frcnn_log)


def test_a_source_is_told_apart_by_what_it_is_on_disk(tmp_path, monkeypatch):
    from frcnn.inference.video import is_video

    monkeypatch.chdir(tmp_path)
    (tmp_path / "clips.mp4").mkdir()  # a folder with a video's name
    (tmp_path / "0").write_bytes(b"")  # a file named like a camera
    (tmp_path / "real.avi").write_bytes(b"")
    assert not is_video("clips.mp4") and not is_video("0") and is_video("real.avi")
    assert is_video("1")  # no such file: camera 1
    assert is_video("missing.mp4") and not is_video("*.mp4")  # a glob is a glob
