"""``frcnn serve``: a model behind an HTTP endpoint, with a page to try it in a browser."""

from __future__ import annotations

import argparse
import logging
import signal

from ..serve.options import ServeOptions
from .common import add_precision_arg

DEFAULTS = ServeOptions()

log = logging.getLogger("frcnn")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP (POST /predict; a page to try it at /)",
        description="POST /predict takes an image (a multipart form file or the raw body) and "
        "returns frcnn predict's JSON detections; GET /health, GET /model; GET / is a page "
        "where you drop an image and see what the model finds. Waiting requests are "
        "batched. Needs frcnn[serve].",
    )
    p.add_argument(
        "--weights", required=True, help="model file: .safetensors, .onnx, .torchscript, .xml"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 for every interface)",
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    p.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULTS.max_batch,
        help=f"most images run in one call (default {DEFAULTS.max_batch})",
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=DEFAULTS.max_wait_ms,
        help="how long the first waiting image waits for others to batch with (default "
        f"{DEFAULTS.max_wait_ms:g})",
    )
    p.add_argument(
        "--conf",
        type=float,
        help="default score threshold of /predict (a request may pass ?conf=; default: the "
        "model file's)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default auto)")
    add_precision_arg(p)
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULTS.max_upload_mb,
        help=f"largest request body (default {DEFAULTS.max_upload_mb:g} MB)",
    )
    p.add_argument(
        "--max-megapixels",
        type=float,
        default=DEFAULTS.max_megapixels,
        help="largest image, read from its header before decoding (default "
        f"{DEFAULTS.max_megapixels:g} Mpx)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import require

    require("fastapi", "serve", "frcnn serve")
    uvicorn = require("uvicorn", "serve", "frcnn serve")
    require("python_multipart", "serve", "frcnn serve")
    from ..inference.options import InferenceOptions
    from ..serve.app import create_app
    from ..serve.service import DetectorService

    options = InferenceOptions(conf=args.conf, device=args.device, precision=args.precision)
    service = DetectorService(args.weights, options)
    serving = ServeOptions(
        args.max_batch, args.max_wait_ms, args.max_upload_mb, args.max_megapixels
    )
    app = create_app(service, serving)
    log.info(
        "serving %s (%s) on http://%s:%d: POST /predict, GET /health, GET /model, GET / "
        "(a page to try it); Ctrl+C stops it",
        args.weights,
        service.format,
        args.host,
        args.port,
    )
    stop = (signal.SIGINT, signal.SIGTERM)
    # uvicorn stops gracefully on either (in-flight requests answered, the queue run), then
    # raises the signal again for the handler it found: this one, so that frcnn exits 0.
    before = {sig: signal.signal(sig, lambda *_: None) for sig in stop}
    try:
        uvicorn.run(
            app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=10
        )
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return 0
