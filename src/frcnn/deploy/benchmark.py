"""What each format of a model costs: ms per image (median, p90), images/s and peak memory,
and (with data) whether it changes accuracy.

Speeds are measured in one process with the formats interleaved image by image, so that a
busy machine slows them alike; peak memory is each format's own, measured in a fresh child
process (load, warm up, run the same images).
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..inference.predict import detect

log = logging.getLogger("frcnn")

FALLBACK_SIZE = 640  # timed side when no format records the model's input size


@dataclass
class FormatResult:
    """One format's figures."""

    format: str
    file: str
    seconds: list[float] = field(default_factory=list)
    peak_mb: float = float("nan")
    map50: float | None = None
    map: float | None = None
    size: tuple[int, int] = (0, 0)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.seconds) * 1000)

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.seconds, 90) * 1000)


def format_parts(fmt: str) -> tuple[str, str]:
    """A benchmark format as ``(runtime, precision)``: ``pytorch-bf16`` -> ``("pytorch",
    "bf16")``, ``onnx`` -> ``("onnx", "fp32")``."""
    kind, _, precision = fmt.partition("-")
    return kind, precision or "fp32"


def format_file(weights: str | Path, fmt: str, data: str | Path | None = None) -> Path:
    """The model file of a format: the weights themselves, or their export beside them
    (ONNX of any size; int8 calibrated on ``data``), made and checked now when missing or
    when it records other weights than these (a stale export is never timed)."""
    weights = Path(weights)
    kind, precision = format_parts(fmt)
    if kind == "pytorch":
        return weights
    from .export import default_out, export_model, weights_hash

    exported = default_out(weights, kind, precision)
    if exported.exists():
        made_from = load_runner(fmt, exported, None).weights_sha256
        if made_from == weights_hash(weights):
            return exported
        log.info(
            "%s was %s: exporting it again",
            exported,
            "made from other weights" if made_from else "made without a record of its weights",
        )
    if precision == "int8" and data is None:
        raise InputError(
            f"{exported} is missing or stale and --int8 needs images to calibrate on: pass "
            "--data, or export it first (frcnn export --weights W --int8 --data DATA)"
        )
    log.info("exporting %s to %s, checked against PyTorch", weights, exported)
    export_model(weights, kind, exported, precision=precision, data=data)
    return exported


def load_runner(fmt: str, path: str | Path, threads: int | None) -> Callable:
    """A callable ``runner([image]) -> detections`` of a model file in a format, as
    ``frcnn predict`` would run it."""
    kind, precision = format_parts(fmt)
    if kind == "onnx":
        from .exported import OnnxDetector

        # Not spinning: ONNX Runtime's threads otherwise busy-wait after each image and
        # slow the format timed next.
        return OnnxDetector(path, threads, spin=False)
    if kind == "torchscript":
        from .exported import TorchScriptDetector

        return TorchScriptDetector(path)
    if kind == "openvino":
        from .exported import OpenVinoDetector

        return OpenVinoDetector(path, threads)
    from ..inference.compose import load_detector
    from ..inference.options import InferenceOptions

    # What `frcnn predict [--precision bf16]` runs: the model with its batch norms folded.
    return load_detector(path, InferenceOptions(precision=precision, device="cpu"))


def benchmark_images(size: int | tuple[int, int], n: int) -> list[torch.Tensor]:
    """``n`` textured images of ``size`` pixels (a side, or height and width; seeded), as
    the model takes them."""
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, h, w, generator=g) for _ in range(n)]


def interleaved(runners: dict[str, Callable], images: Sequence[torch.Tensor]) -> dict[str, list]:
    """Seconds per image of each runner, runners interleaved image by image, after one
    warm-up image each."""
    times: dict[str, list[float]] = {k: [] for k in runners}
    for run in runners.values():
        detect(run, [images[0]])
    for image in images:
        for name, run in runners.items():
            start = time.perf_counter()
            detect(run, [image])
            times[name].append(time.perf_counter() - start)
    return times


def _peak_child(
    fmt: str, path: str, threads: int | None, size: tuple[int, int], n: int, queue
) -> None:
    if threads:
        torch.set_num_threads(threads)
    run = load_runner(fmt, path, threads)
    for image in benchmark_images(size, n):
        detect(run, [image])
    queue.put(_own_peak_mb())


def _own_peak_mb() -> float:
    """This process's peak resident memory in MiB. On Linux VmHWM of /proc/self/status: the
    peak of this program image alone (ru_maxrss would also count the parent's memory at the
    fork that started this process, kept across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def peak_memory_mb(
    fmt: str, path: str, threads: int | None, size: tuple[int, int], n: int
) -> float:
    """Peak resident memory (MiB) of a fresh process that loads the model and runs ``n``
    images (the interpreter and libraries included)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_peak_child, args=(fmt, path, threads, size, n, queue))
    child.start()
    child.join()
    return float(queue.get()) if child.exitcode == 0 and not queue.empty() else float("nan")


def _common_size(runners: dict[str, Callable], size: int | None) -> tuple[int, int]:
    """The timed images' size, for every format alike: a fixed-size export's (TorchScript,
    ONNX ``--fixed``), else ``size`` square when given, else the model's own input size.

    Raises:
        ValueError: fixed-size exports of different sizes.
    """
    fixed = {r.fixed_size for r in runners.values() if getattr(r, "fixed_size", None)}
    if len(fixed) > 1:
        raise InputError(f"the fixed-size exports take different sizes {sorted(fixed)}")
    if fixed:  # timed at its own size (stretching would time a resize besides the graph)
        h, w = fixed.pop()
        if size is not None and (h, w) != (size, size):
            log.info("timing every format at %dx%d, the size the fixed-size export takes", h, w)
        return h, w
    if size is not None:
        return size, size
    for runner in runners.values():
        model = getattr(runner, "model", None)
        if model is not None and hasattr(model, "transform"):
            from .export import input_size

            return input_size(model)
        if getattr(runner, "input_size", None):
            return runner.input_size
    return FALLBACK_SIZE, FALLBACK_SIZE


def run_benchmark(
    files: dict[str, str | Path],
    size: int | None = None,
    n: int = 20,
    threads: int | None = None,
    data: str | Path | None = None,
    memory: bool = True,
) -> list[FormatResult]:
    """Figures for each ``format -> file`` (see the module doc)."""
    from ..api import evaluate

    if threads:
        torch.set_num_threads(threads)
    runners = {fmt: load_runner(fmt, path, threads) for fmt, path in files.items()}
    size = _common_size(runners, size)
    times = interleaved(runners, benchmark_images(size, n))
    results = []
    for fmt, path in files.items():
        r = FormatResult(fmt, str(path), times[fmt], size=size)
        if memory:
            r.peak_mb = peak_memory_mb(fmt, str(path), threads, size, min(n, 5))
        if data is not None:
            kind, precision = format_parts(fmt)  # an exported file computes in its own
            scored = evaluate(path, data, precision=precision if kind == "pytorch" else "fp32")
            r.map50, r.map = scored.coco["AP50"], scored.coco["AP"]
        results.append(r)
    return results


def _mib(value: float) -> str:
    return f"{'-':>10}" if value != value else f"{value:>10.0f}"  # NaN: not measured


def table(results: Sequence[FormatResult]) -> str:
    """The results as ``frcnn benchmark`` prints them, with each format's time relative to
    the first's."""
    h, w = results[0].size
    lines = [
        f"{'format':<13}{'ms/image':>10}{'p90 ms':>8}{'images/s':>10}{'peak MiB':>10}"
        f"{'vs ' + results[0].format:>12}{'mAP50':>8}{'mAP':>8}   ({h}x{w} px)"
    ]
    base = results[0].median_ms
    for r in results:
        scores = f"{r.map50:>8.4f}{r.map:>8.4f}" if r.map50 is not None else f"{'-':>8}{'-':>8}"
        lines.append(
            f"{r.format:<13}{r.median_ms:>10.1f}{r.p90_ms:>8.1f}{1000 / r.median_ms:>10.1f}"
            f"{_mib(r.peak_mb)}{r.median_ms / base:>11.2f}x{scores}"
        )
    return "\n".join(lines)
