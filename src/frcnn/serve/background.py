"""A server in a thread of this process: what ``frcnn serve`` runs, for a notebook, a test
or a benchmark (``with BackgroundServer("best.safetensors") as server: server.url``)."""

from __future__ import annotations

import os
import threading
import time

from ..errors import InputError
from ..inference.options import InferenceOptions
from .app import create_app
from .options import ServeOptions
from .service import DetectorService


class BackgroundServer:
    """``weights`` served by uvicorn on ``host`` (127.0.0.1: this machine only) and ``port``
    (0: a free one; :attr:`url` says which) until :meth:`close`.

    Raises:
        ValueError: the server did not start within ``timeout`` seconds.
    """

    def __init__(
        self,
        weights: str | os.PathLike,
        options: InferenceOptions | None = None,
        serving: ServeOptions | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 60.0,
    ) -> None:
        import uvicorn

        self.service = DetectorService(weights, options or InferenceOptions())
        app = create_app(self.service, serving or ServeOptions())
        config = uvicorn.Config(app, host=host, port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="frcnn-serve", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.close()
                raise InputError(f"the server on {host}:{port} did not start")
            time.sleep(0.02)
        bound = self.server.servers[0].sockets[0].getsockname()
        self.url = f"http://{host}:{bound[1]}"

    def close(self) -> None:
        """Stop taking requests, answer those in flight, and stop."""
        self.server.should_exit = True
        self.thread.join(timeout=60)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
