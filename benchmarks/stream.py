"""Memory of a streamed dataset: peak resident memory of one pass of the training stream, of
``data check``, and (for contrast) of reading the split into memory, for 1k and 10k rows.

Each measurement runs in a fresh interpreter on a local parquet folder in the
``detection-datasets/coco`` schema written here from generated images (JPEG bytes); the
peak is the process's maximum resident set. Printed, not asserted.

    .venv/bin/python benchmarks/stream.py [--rows 1000 10000] [--size 160] [--buffer 1000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODES = ("train pass", "data check", "read into memory")
ROWS_PER_FILE = 1000


def write_rows(out: Path, rows: int, size: int) -> None:
    """``rows`` generated images with their boxes as parquet files of 1000 rows each."""
    import datasets

    from frcnn.data.synth import SHAPES, synth_image

    features = datasets.Features(
        {
            "image_id": datasets.Value("int64"),
            "image": datasets.Image(),
            "objects": {
                "bbox": datasets.List(datasets.List(datasets.Value("float32"), length=4)),
                "category": datasets.List(datasets.ClassLabel(names=list(SHAPES))),
            },
        }
    )
    rng = np.random.default_rng(0)
    (out / "data").mkdir(parents=True)
    for start in range(0, rows, ROWS_PER_FILE):
        table: dict[str, list] = {"image_id": [], "image": [], "objects": []}
        for i in range(start, min(rows, start + ROWS_PER_FILE)):
            image, boxes, labels = synth_image(rng, size)
            data = io.BytesIO()
            image.save(data, "JPEG", quality=90)
            xywh = boxes.copy()
            xywh[:, 2:] -= xywh[:, :2]
            table["image_id"].append(i + 1)
            table["image"].append({"bytes": data.getvalue(), "path": None})
            table["objects"].append({"bbox": xywh.tolist(), "category": (labels - 1).tolist()})
        part = datasets.Dataset.from_dict(table, features=features)
        part.to_parquet(str(out / "data" / f"train-{start // ROWS_PER_FILE:05d}.parquet"))


def child(mode: str, folder: str, rows: int, buffer: int) -> None:
    """One measurement in this process: prints rows seen, seconds and peak memory (MB),
    and the memory after the imports, before any row."""
    from frcnn.data.check import check_chunks, check_dataset
    from frcnn.data.hf import HFRows, HFStreamDataset, StreamOptions, read_hf
    from frcnn.data.loader import build_loader

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    source, start, seen = f"hf:{folder}", time.perf_counter(), 0
    if mode == "train pass":
        items = HFStreamDataset(source, StreamOptions(buffer=buffer))
        for _, targets in build_loader(items, 4):
            seen += len(targets) + targets.unreadable
            if seen >= rows:
                break
    elif mode == "data check":
        seen = check_chunks(part for part, _ in HFRows(source).chunks(256)).images_in
    else:
        seen = check_dataset(read_hf(source))[1].images_in
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = time.perf_counter() - start
    print(json.dumps({"rows": seen, "seconds": seconds, "peak_mb": peak, "base_mb": base}))


def measure(mode: str, folder: Path, rows: int, buffer: int) -> dict:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, __file__, "--child", mode, str(folder), str(rows), str(buffer)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--size", type=int, default=160, help="image side in pixels")
    parser.add_argument("--buffer", type=int, default=1000, help="shuffle buffer rows")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, folder, rows, buffer = args.child
        child(mode, folder, int(rows), int(buffer))
        return
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[tuple[str, int], dict] = {}
        for rows in args.rows:
            folder = Path(tmp) / f"rows{rows}"
            write_rows(folder, rows, args.size)
            for mode in MODES:
                results[mode, rows] = measure(mode, folder, rows, args.buffer)
    base = max(r["base_mb"] for r in results.values())
    print(
        f"{args.size} px JPEG rows, shuffle buffer {args.buffer}; peak resident memory "
        f"(after the imports: {base:.0f} MB):"
    )
    print(f"{'':>18}" + "".join(f"{rows:>12} rows" for rows in args.rows) + "   last/first")
    for mode in MODES:
        peaks = [results[mode, rows]["peak_mb"] for rows in args.rows]
        cells = "".join(f"{p:>14.0f} MB" for p in peaks)
        print(f"{mode:>18}{cells}   x{peaks[-1] / peaks[0]:.2f}")
    for mode in MODES:
        rates = [results[mode, r]["rows"] / results[mode, r]["seconds"] for r in args.rows]
        print(f"{mode:>18}: " + ", ".join(f"{x:.0f} rows/s" for x in rates))


if __name__ == "__main__":
    main()
