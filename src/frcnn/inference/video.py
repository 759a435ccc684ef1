"""Video in and out: every frame of a video file (or a camera) predicted in batches, an
annotated copy written, and per-frame detections with frame number and timestamp.

Frames are read and written with OpenCV (its wheels carry FFmpeg). Written per video, in
the output folder: ``<stem>.mp4`` (the frames with their boxes, at the source's frame rate)
and ``<stem>.frames.json`` or ``<stem>.frames.csv`` (one entry per frame, or one row per
detection, with ``frame`` counted from 0 and ``time_s``).
"""

from __future__ import annotations

import csv
import glob
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.images import to_pil, to_tensor
from ..errors import InputError
from .options import InferenceOptions
from .predict import Prediction, detect

log = logging.getLogger("frcnn")

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def is_video(source: str | Path) -> bool:
    """A video file, or a camera index (``0``, ``1``, ...), told apart by what is on disk:
    an existing file with a video suffix is a video (a folder named ``clips.mp4`` is a
    folder, a file named ``0`` is a file); a name that exists nowhere is a camera when it
    is a number, a video when it has a video suffix and is no glob pattern."""
    path = Path(str(source))
    if path.exists():
        return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES
    if glob.has_magic(str(source)):
        return False
    return str(source).isdigit() or path.suffix.lower() in VIDEO_SUFFIXES


@dataclass
class VideoPrediction:
    """A video's detections, one :class:`Prediction` per frame (``frame``, ``time_s``)."""

    source: str
    fps: float
    frames: list[Prediction] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    expected: int | None = None  # frames the file announces (None: unknown, a camera)


def _open(source: str | Path):
    import cv2

    capture = cv2.VideoCapture(int(source) if str(source).isdigit() else str(source))
    if not capture.isOpened():
        raise InputError(f"cannot open the video {source} (not a video OpenCV can decode?)")
    return capture


def _frames(capture, batch: int) -> Iterator[list[np.ndarray]]:
    """RGB frames in batches until the video (or camera) ends."""
    import cv2

    chunk: list[np.ndarray] = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        chunk.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if len(chunk) == batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def predict_video(
    detector: object,
    source: str | Path,
    options: InferenceOptions | None = None,
    out: Path | None = None,
    fmt: str = "json",
    draw: dict | None = None,
) -> VideoPrediction:
    """Every frame of ``source`` predicted (detections scoring at least the options'
    threshold), ``options.images_per_batch`` frames at a time; with ``out``, the annotated
    video and the per-frame detections written there (module doc)."""
    from tqdm import tqdm

    capture = _open(source)
    import cv2

    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    result = VideoPrediction(str(source), float(fps))
    writer = None
    stem = f"camera{source}" if str(source).isdigit() else Path(str(source)).stem
    options = options or InferenceOptions()
    conf, class_names = options.threshold(detector), detector.class_names
    bar = tqdm(total=total, desc=f"{stem}", unit="frame", leave=False, disable=None)
    try:
        for chunk in _frames(capture, options.images_per_batch):
            tensors = [to_tensor(f) for f in chunk]
            dets = detect(detector, tensors)
            for frame, tensor, det in zip(chunk, tensors, dets, strict=True):
                n = len(result.frames)
                p = Prediction.kept(f"{source}#frame{n}", tensor, det, conf)
                result.frames.append(p)
                result.times.append(n / fps)
                if out is not None:
                    writer = writer or _writer(out / f"{stem}.mp4", fps, frame)
                    writer.write(_drawn(frame, p, class_names, draw or {}))
            bar.update(len(chunk))
    finally:
        bar.close()
        capture.release()
        if writer is not None:
            writer.release()
    if out is not None:
        result.written = [out / f"{stem}.mp4", _write_frames(result, out, stem, fmt, class_names)]
    log.info("%s: %d frames at %.1f fps", source, len(result.frames), fps)
    if total and len(result.frames) < total:
        log.warning(
            "warning: %s: read %d of the %d frames the file announces (truncated or damaged?); "
            "the frames read are predicted and written",
            source,
            len(result.frames),
            total,
        )
    result.expected = total
    return result


def _writer(path: Path, fps: float, frame: np.ndarray):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    size = (int(frame.shape[1]), int(frame.shape[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise OSError(f"cannot write the video {path} (OpenCV has no mp4v encoder here?)")
    return writer


def _drawn(frame: np.ndarray, p: Prediction, class_names, draw: dict) -> np.ndarray:
    """The frame with its boxes, as OpenCV's BGR."""
    from ..evaluation.plots import draw_detections

    image = draw_detections(
        to_pil(frame),
        p.boxes,
        p.labels,
        class_names or [],
        p.scores,
        draw.get("line_width"),
        draw.get("show_labels", True),
        draw.get("show_scores", True),
    )
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


def _write_frames(
    result: VideoPrediction, out: Path, stem: str, fmt: str, class_names: Sequence[str] | None
) -> Path:
    """``<stem>.frames.json`` (an entry per frame) or ``<stem>.frames.csv`` (a row per
    detection), each with the frame number and its time in seconds."""
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        path = out / f"{stem}.frames.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["frame", "time_s", "xmin", "ymin", "xmax", "ymax", "label", "score"])
            for n, (p, t) in enumerate(zip(result.frames, result.times, strict=True)):
                w.writerows([n, f"{t:.3f}", *cells] for cells in p.csv_cells(class_names))
        return path
    path = out / f"{stem}.frames.json"
    frames = []
    for n, (p, t) in enumerate(zip(result.frames, result.times, strict=True)):
        entry = p.to_json(class_names)
        entry.pop("image")
        frames.append({"frame": n, "time_s": round(t, 4), **entry})
    path.write_text(
        json.dumps({"video": result.source, "fps": result.fps, "frames": frames}, indent=1)
    )
    return path
