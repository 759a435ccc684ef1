"""The README's picture of ``frcnn serve``'s page: the model served in this process, the page
opened in headless Chromium, an image picked, the screenshot written.

    .venv/bin/python docs/tools/serve_page.py --weights runs/demo/train/weights/best.safetensors \\
        --image runs/demo/data/val/images/000000.png --out docs/images/serve_page.png

Needs Chromium (``make browser``) and playwright (``make install``).
"""

from __future__ import annotations

import argparse
import shutil

from frcnn.serve.background import BackgroundServer

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
FLAGS += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--out", default="docs/images/serve_page.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with BackgroundServer(args.weights) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 620})
        page.goto(f"{server.url}/")
        page.wait_for_function("document.getElementById('model').textContent.length > 40")
        page.set_input_files("#file", args.image)
        page.wait_for_function("document.body.dataset.drawn !== undefined")
        page.screenshot(path=args.out)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
