"""``frcnn serve``'s HTTP application (FastAPI): ``POST /predict``, ``GET /health``,
``GET /model`` and ``GET /``, a page to try the model in a browser. Imported only when
serving (FastAPI is the ``serve`` extra)."""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

from fastapi import FastAPI, Query
from fastapi import Request as HttpRequest
from fastapi.responses import HTMLResponse, JSONResponse

from ..data.images import MAX_ASPECT
from .batching import Batcher
from .options import ServeOptions
from .service import DetectorService, Request
from .uploads import BadUpload, decode, too_large, upload_from


def page() -> str:
    """The page ``GET /`` returns (self-contained: no external script, style or font)."""
    return resources.files("frcnn.serve").joinpath("page.html").read_text(encoding="utf-8")


def create_app(service: DetectorService, options: ServeOptions | None = None) -> Any:
    """The application serving ``service``; its batcher starts with the application and
    finishes the queued requests when it shuts down."""
    from contextlib import asynccontextmanager

    options = options or ServeOptions()
    state: dict[str, Batcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        state["batcher"] = Batcher(service.predict, options.max_batch, options.max_wait_ms / 1000)
        yield
        state["batcher"].close()

    app = FastAPI(title="frcnn", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(BadUpload)
    async def refused(request: HttpRequest, err: BadUpload) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page()

    @app.get("/health")
    async def health() -> dict:
        batcher = state.get("batcher")
        return {"status": "ok", **(batcher.stats.to_json() if batcher else {})}

    @app.get("/model")
    async def model() -> dict:
        return service.describe(options.max_batch, options.max_wait_ms)

    @app.post("/predict")
    async def predict(request: HttpRequest, conf: float | None = Query(None, ge=0, le=1)) -> dict:
        body = await read_body(request, options.max_bytes)
        upload = upload_from(body, request.headers.get("content-type", ""))
        image = await asyncio.to_thread(decode, upload, options.max_pixels)
        check_aspect(upload.name, image.shape[:2])
        job = Request(upload.name, image, service.conf if conf is None else conf)
        return await asyncio.wrap_future(state["batcher"].submit(job))

    return app


async def read_body(request: HttpRequest, limit: int) -> bytes:
    """The request body in memory, refused (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def check_aspect(name: str, shape: tuple[int, int]) -> None:
    """Refuse (400) what ``frcnn predict`` skips untiled: an image too long and thin to
    resize."""
    h, w = shape
    if max(h, w) > MAX_ASPECT * max(1, min(h, w)):
        raise BadUpload(400, f"{name} is {w}x{h}, more than {MAX_ASPECT}:1; predict it tiled")
