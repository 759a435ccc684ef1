"""``frcnn serve`` on 127.0.0.1: the endpoint's detections are frcnn predict's, bad requests
get a 4xx and the server goes on, concurrent requests are batched, the CLI shuts down
gracefully."""

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from conftest import TINY
from PIL import Image

import frcnn

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("python_multipart")


def Served(weights, conf=None, **serving):
    """``weights`` served in a thread on 127.0.0.1 (a free port), with these options."""
    from frcnn.inference.options import InferenceOptions
    from frcnn.serve.background import BackgroundServer
    from frcnn.serve.options import ServeOptions

    return BackgroundServer(weights, InferenceOptions(conf=conf), ServeOptions(**serving))


def call(url: str, body: bytes | None = None, content_type: str | None = None):
    """``(status, parsed JSON or text)`` of a GET (no body) or POST."""
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def form(name: str, data: bytes, kind: str = "image/png") -> tuple[bytes, str]:
    """A multipart body with one file field, and its content type."""
    b = "frcnnboundary7"
    head = (
        f'--{b}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        f"Content-Type: {kind}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def png(h: int, w: int, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (h, w, 3), np.uint8)
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = frcnn.build_model("resnet18_fpn", 3, **TINY)
    folder = tmp_path_factory.mktemp("serve")
    return frcnn.save_model(model, folder / "m.safetensors", class_names=["cat", "dog"])


@pytest.fixture(scope="module")
def served(weights):
    server = Served(weights, max_batch=4, max_wait_ms=20)
    yield server
    server.close()


def test_detections_from_the_endpoint_equal_frcnn_predicts(served, weights, tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(png(150, 97))
    expected = frcnn.predict(weights, [str(path)], conf=0.0)[0].to_json(["cat", "dog"])
    assert expected["detections"]
    body, kind = form("photo.png", path.read_bytes())
    status, found = call(f"{served.url}/predict?conf=0", body, kind)
    assert status == 200 and found == {**expected, "image": "photo.png"}
    status, raw = call(f"{served.url}/predict?conf=0", path.read_bytes(), "image/png")
    assert status == 200 and raw == {**expected, "image": "upload"}
    # The server's threshold (the model file's) unless the request gives one.
    status, default = call(f"{served.url}/predict", path.read_bytes(), "image/png")
    conf = served.service.conf
    assert [d for d in expected["detections"] if d["score"] >= conf] == default["detections"]


def test_health_model_and_the_page(served):
    assert call(f"{served.url}/health")[1]["status"] == "ok"
    status, model = call(f"{served.url}/model")
    assert status == 200 and model["classes"] == ["cat", "dog"]
    assert model["format"] == "pytorch" and model["precision"] == "fp32"
    assert model["input"]["size"] == [128, 128] and model["input"]["any_size"]
    assert "pad to the same input size" in model["batching"]
    status, page = call(f"{served.url}/")
    assert status == 200 and "<canvas" in page and 'type="range"' in page
    assert "http://" not in page and "https://" not in page and "<script src" not in page


def test_bad_requests_get_a_4xx_naming_the_problem_and_the_server_goes_on(weights):
    server = Served(weights, max_upload_mb=0.05, max_megapixels=1.0)
    before = set(os.listdir(tempfile.gettempdir()))
    try:
        url = f"{server.url}/predict"
        truncated = png(64, 64)[:200]
        bomb = io.BytesIO()  # 3000 x 3000 pixels in 9 kB: refused from its header
        Image.new("L", (3000, 3000)).save(bomb, "PNG")
        cases = [
            (b"hello", "text/plain", 415, "is not an image"),
            (b"not an image at all", "image/png", 400, "not an image Pillow can read"),
            (truncated, "image/png", 400, "could not be decoded"),
            (bomb.getvalue(), "image/png", 413, "3000x3000, over this server's limit of 1,000,000"),
            (b"\0" * 60_000, "image/png", 413, "60,000 bytes, over this server's limit of 52,428"),
            (b"", "image/png", 400, "empty"),
            (*form("notes.txt", b"x", "text/plain"), 415, "text/plain, not an image"),
            (b"--b\r\n\r\n", "multipart/form-data; boundary=b", 400, "no file"),
            (png(10, 400), "image/png", 400, "more than 32:1"),
        ]
        for body, kind, status, message in cases:
            got, answer = call(url, body, kind)
            assert got == status and message in answer["error"], (message, got, answer)
        assert call(f"{url}?conf=2", png(64, 64), "image/png")[0] == 422
        status, found = call(url, png(64, 64), "image/png")
        assert status == 200 and found["width"] == 64
        assert call(f"{server.url}/health")[1]["failed"] == 0
    finally:
        server.close()
    assert set(os.listdir(tempfile.gettempdir())) <= before  # nothing spooled to disk


def test_four_clients_of_25_requests_each_are_answered_and_batched(served):
    images = [png(96, 128, seed) for seed in range(4)]

    def client(k: int) -> list[int]:
        return [call(f"{served.url}/predict", images[k], "image/png")[0] for _ in range(25)]

    start = call(f"{served.url}/health")[1]
    with ThreadPoolExecutor(4) as pool:
        statuses = [s for part in pool.map(client, range(4)) for s in part]
    assert statuses == [200] * 100
    end = call(f"{served.url}/health")[1]
    assert end["requests"] - start["requests"] == 100 and end["failed"] == 0
    assert end["batches"] - start["batches"] < 100  # some requests shared a call
    assert 2 <= end["largest_batch"] <= 4


def test_an_onnx_model_is_served_with_its_own_detections(onnx_export, tmp_path):
    _, onnx_file, _ = onnx_export
    path = tmp_path / "a.png"
    path.write_bytes(png(120, 90, seed=3))
    expected = frcnn.predict(onnx_file, [str(path)], conf=0.0)[0].to_json(["cat", "dog"])
    server = Served(onnx_file)
    try:
        assert call(f"{server.url}/model")[1]["format"] == "onnx"
        status, found = call(f"{server.url}/predict?conf=0", path.read_bytes(), "image/png")
        assert status == 200 and found == {**expected, "image": "upload"}
    finally:
        server.close()


def test_the_command_serves_until_told_to_stop(weights, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "frcnn", "serve", "--weights", str(weights)]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            try:
                if call(f"{url}/health")[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "no server"
                time.sleep(0.2)
        assert call(f"{url}/predict", png(64, 64), "image/png")[0] == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    err = process.stderr.read()
    assert f"on http://127.0.0.1:{port}" in err
    assert list(tmp_path.iterdir()) == []  # the server wrote nothing


def test_a_missing_serve_extra_is_named(weights, monkeypatch, capsys):
    from frcnn.cli import main

    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve", "--weights", str(weights)]) == 2
    assert "frcnn[serve]" in capsys.readouterr().err


CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_the_page_in_headless_chromium_draws_what_the_model_finds(served, weights, tmp_path):
    """Pick an image on the page: it is drawn with a row per detection at the model's
    threshold; the slider shows those at or above its value, at 0 every one."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium (make browser installs Debian's)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    path = tmp_path / "photo.png"
    path.write_bytes(png(150, 97, seed=5))
    every = frcnn.predict(weights, [str(path)], conf=0.0)[0]
    kept = int((every.scores >= served.service.conf).sum())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(f"{served.url}/")
        page.wait_for_function("document.getElementById('model').textContent.includes('cat')")
        page.set_input_files("#file", str(path))
        page.wait_for_function("document.body.dataset.drawn !== undefined")
        assert int(page.evaluate("document.body.dataset.drawn")) == kept
        assert page.locator("#rows tr").count() == kept
        scores = [d["score"] for d in every.to_json(None)["detections"]]
        for threshold in (0.34, 0.0):
            page.eval_on_selector(
                "#conf", f"e => {{ e.value = {threshold}; e.dispatchEvent(new Event('input')) }}"
            )
            assert page.locator("#rows tr").count() == sum(s >= threshold for s in scores)
        assert page.locator("#rows tr").count() == len(scores) > sum(s >= 0.34 for s in scores)
        w, h = page.evaluate("[canvas.width, canvas.height]")
        assert abs(w / h - 97 / 150) < 0.02  # the image fitted to the page, boxes over it
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()
    assert (tmp_path / "page.png").stat().st_size > 0
