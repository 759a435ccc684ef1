"""report.html: every section, every picture embedded, nothing fetched from elsewhere."""

import base64
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from frcnn.data.records import DetectionDataset, ImageRecord
from frcnn.evaluation import evaluate_detections
from frcnn.evaluation.gallery import worst_images
from frcnn.evaluation.html import SECTIONS
from frcnn.evaluation.write import write_evaluation


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.sources, self.external, self.tags = set(), [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.sources.append(attrs.get("src", ""))
        for key in ("src", "href", "action", "data"):
            value = attrs.get(key) or ""
            if value and not value.startswith(("data:", "#")):
                self.external.append((tag, key, value[:60]))


def _case(tmp_path, n=6):
    """Images on disk with objects, and detections with every kind of error."""
    rng = np.random.default_rng(0)
    recs, preds = [], []
    for i in range(1, n + 1):
        path = tmp_path / "images" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(path)
        boxes = np.array([[10, 10, 50, 50], [70, 20, 120, 90]], float)
        recs.append(ImageRecord(path.name, path, 160, 120, boxes, [1, 2], image_id=i))
        found = np.array(
            [[11, 10, 50, 52], [70, 20, 120, 90], [30, 30, 60, 60], [130, 90, 150, 110]]
        )
        preds.append(
            {
                "image_id": i,
                "boxes": found[: 1 + i % 4],
                "scores": np.array([0.9, 0.8, 0.7, 0.6])[: 1 + i % 4],
                "labels": np.array([1, 1 + i % 2, 1, 2])[: 1 + i % 4],
            }
        )
    return DetectionDataset(str(tmp_path), ["cat", "dog"], recs), preds


def test_report_has_every_section_and_embeds_every_picture(tmp_path):
    ds, preds = _case(tmp_path)
    result = evaluate_detections(ds, preds, conf=0.5)
    out = tmp_path / "eval"
    (out).mkdir()
    Image.new("RGB", (50, 40), "white").save(out / "results.png")  # as a run folder has
    page = write_evaluation(result, ds, out, "a test", ["images: 6 in, 6 used"])
    text = page.read_text()
    parser = _Page()
    parser.feed(text)
    assert {i for i, _ in SECTIONS} <= parser.ids
    assert parser.external == [] and "script" not in parser.tags and "link" not in parser.tags
    assert all(src.startswith("data:image/") for src in parser.sources)
    pictures = sorted(p for p in out.iterdir() if p.suffix in (".png", ".jpg"))
    names = {p.name for p in pictures}
    assert {
        "errors.png",
        "reliability.png",
        "worst_images.jpg",
        "PR_curve.png",
        "confusion_matrix.png",
    } <= names
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in parser.sources}
    assert all(p.read_bytes() in embedded for p in pictures)  # every picture in the folder
    assert "images: 6 in, 6 used" in text and "a test" in text
    for name in ("metrics.json", "per_class.csv", "per_size.csv", "errors_per_class.csv"):
        assert (out / name).is_file()


def test_worst_images_rank_by_errors_at_the_threshold(tmp_path):
    ds, preds = _case(tmp_path)
    worst = worst_images(ds, {p["image_id"]: p for p in preds}, conf=0.5, n=3)
    totals = [w.total for w in worst]
    assert totals == sorted(totals, reverse=True) and len(worst) == 3
    # Image 3 (i % 4 == 3): a TP, a confusion (dog on dog's box is right: 1 + 3 % 2 = 2), a
    # Loc-or-Both box and a false alarm; by hand: no Miss (both objects found).
    by_id = {
        w.record.image_id: w for w in worst_images(ds, {p["image_id"]: p for p in preds}, 0.5, 10)
    }
    assert by_id[3].counts["Miss"] == 0 and by_id[3].counts["Bkg"] == 1
    # Image 4 (i % 4 == 0): one detection, the dog missed.
    assert by_id[4].counts == {"Cls": 0, "Loc": 0, "Both": 0, "Dupe": 0, "Bkg": 0, "Miss": 1}
    assert "1 Miss" in by_id[4].caption()


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    ds, preds = _case(tmp_path)
    out = tmp_path / "eval"
    page = write_evaluation(evaluate_detections(ds, preds, conf=0.5), ds, out, "render test")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,2400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[0] >= 2000 and image.std() > 10  # drawn, not a blank page


def test_worst_images_by_one_error_type(tmp_path):
    ds, preds = _case(tmp_path)
    by_id = {p["image_id"]: p for p in preds}
    assert [w.record.image_id for w in worst_images(ds, by_id, 0.5, 8, by="Miss")] == [4]
    assert [w.record.image_id for w in worst_images(ds, by_id, 0.5, 8, by="Bkg")] == [3]
    with pytest.raises(ValueError, match="unknown error type"):
        worst_images(ds, by_id, 0.5, by="Wrong")
