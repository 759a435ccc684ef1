"""``frcnn serve`` under load: throughput and p50/p99 latency with and without batching.

Two servers of the same model on 127.0.0.1 (``--max-batch 1``, and ``--max-batch N`` with
``--max-wait-ms``), in this process; ``--clients`` threads each send ``--requests`` PNG
images of ``--size`` px to one server, then to the other, alternating for ``--rounds``
rounds; the figures are the medians over rounds.

    .venv/bin/python benchmarks/serve.py [--weights W] [--clients 4] [--requests 25]
        [--rounds 3] [--size 256] [--max-batch 8] [--max-wait-ms 10]

Without ``--weights``: a randomly initialised model of the demo's configuration.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import frcnn
from frcnn.demo import DEMO_MODEL
from frcnn.serve.background import BackgroundServer
from frcnn.serve.options import ServeOptions


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "image/png")
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
        return response.status


def images(n: int, size: int) -> list[bytes]:
    out = []
    for seed in range(n):
        buffer = io.BytesIO()
        pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)
        Image.fromarray(pixels).save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


def load(url: str, bodies: list[bytes], clients: int, requests: int) -> tuple[float, list[float]]:
    """Images/s over the whole load and each request's seconds."""

    def client(k: int) -> list[float]:
        times = []
        for i in range(requests):
            start = time.perf_counter()
            status = post(f"{url}/predict", bodies[(k + i) % len(bodies)])
            assert status == 200, status
            times.append(time.perf_counter() - start)
        return times

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for part in pool.map(client, range(clients)) for t in part]
    return len(latencies) / (time.perf_counter() - start), latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    args = parser.parse_args()
    weights = args.weights
    if weights is None:
        torch.manual_seed(0)
        model = frcnn.build_model("resnet18_fpn", 3, **DEMO_MODEL)
        weights = frcnn.save_model(model, Path(tempfile.mkdtemp()) / "m.safetensors")
    batched = ServeOptions(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    servers = {
        "one at a time": BackgroundServer(weights, serving=ServeOptions(1, 0.0)),
        f"batched (<= {args.max_batch}, {args.max_wait_ms:g} ms)": BackgroundServer(
            weights, serving=batched
        ),
    }
    bodies = images(8, args.size)
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in servers}
    for server in servers.values():  # warm-up
        load(server.url, bodies, 1, 2)
    for _ in range(args.rounds):
        for name, server in servers.items():
            rate, latencies = load(server.url, bodies, args.clients, args.requests)
            p50, p99 = np.percentile(latencies, [50, 99]) * 1000
            figures[name].append((rate, p50, p99))
    print(
        f"{args.clients} clients x {args.requests} requests, {args.size}x{args.size} PNG, "
        f"{torch.get_num_threads()} threads, median of {args.rounds} rounds"
    )
    print(f"{'':32s}{'images/s':>10s}{'p50 ms':>10s}{'p99 ms':>10s}{'largest batch':>15s}")
    for name, server in servers.items():
        rate, p50, p99 = (statistics.median(f[i] for f in figures[name]) for i in range(3))
        with urllib.request.urlopen(f"{server.url}/health") as response:
            largest = json.loads(response.read())["largest_batch"]
        print(f"{name:32s}{rate:10.1f}{p50:10.1f}{p99:10.1f}{largest:15d}")
        server.close()


if __name__ == "__main__":
    main()
