"""COCO-trained weights by name (``coco:NAME``), from a torch hub cache seeded with files in
torchvision's layout (random weights under the published file names: nothing downloads)."""

import json
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision.models.detection as detection

import frcnn
from frcnn.cli import main
from frcnn.io.zoo import cache_path, coco_categories
from frcnn.modeling.catalog import COCO_WEIGHTS, COCO_WEIGHTS_BASE

BUILDERS = {
    "resnet50_fpn": ("fasterrcnn_resnet50_fpn", "FasterRCNN_ResNet50_FPN_Weights"),
    "resnet50_fpn_v2": ("fasterrcnn_resnet50_fpn_v2", "FasterRCNN_ResNet50_FPN_V2_Weights"),
    "mobilenet_v3_large_fpn": (
        "fasterrcnn_mobilenet_v3_large_fpn",
        "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    ),
    "mobilenet_v3_large_320_fpn": (
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights",
    ),
}
# torchvision's COCO ids: person 1, bicycle 2, motorcycle 4, dog 18; 12 is a placeholder.
PERSON, MOTORCYCLE, DOG, PLACEHOLDER = 1, 4, 18, 12


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache of the test's own (``TORCH_HOME``)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def seed_cache(name: str):
    """torchvision's ``name`` with random weights saved where torch.hub keeps its COCO file.
    Its classifier is set so that scores vary from box to box (no ties to order) and a
    person, a dog and a placeholder class come out on the test image."""
    torch.manual_seed(0)
    builder = getattr(detection, BUILDERS[name][0])
    reference = builder(weights=None, weights_backbone=None, num_classes=91).eval()
    _spread_scores(reference, IMAGE)
    path = cache_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(reference.state_dict(), path)
    return reference


def _spread_scores(model, images):
    """Class logits of about unit spread over the box features ``images`` give, favouring
    three classes."""
    seen = {}
    predictor = model.roi_heads.box_predictor
    handle = predictor.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    with torch.no_grad():
        model(images)
    handle.remove()
    x = seen["x"]
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(91, x.shape[1], generator=g) / std * (2 / x.shape[1] ** 0.5)
    bias = -(mean @ weight.T)
    bias[[PERSON, PLACEHOLDER, DOG]] += 3.0
    with torch.no_grad():
        predictor.cls_score.weight.copy_(weight)
        predictor.cls_score.bias.copy_(bias)


IMAGE = [torch.rand(3, 180, 240, generator=torch.Generator().manual_seed(0))]


def test_published_files_are_torchvisions():
    for name, (_, weights_enum) in BUILDERS.items():
        url = getattr(detection, weights_enum).COCO_V1.url
        assert COCO_WEIGHTS_BASE + COCO_WEIGHTS[name] == url
    categories = coco_categories()
    assert categories == detection.FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]
    assert len(categories) == 91 and categories.count("N/A") == 10


# ResNet-50 at 800 px takes 15-20 s a model here: those two run with `make test-slow`.
HEAVY = pytest.mark.slow


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=HEAVY) if "resnet" in n else n for n in BUILDERS]
)
def test_coco_model_detects_what_torchvisions_does(name, hub):
    """Same file -> the same detections and scores as torchvision's model, less the
    placeholder classes, which are never reported."""
    reference = seed_cache(name)
    ours = frcnn.load_model(f"coco:{name}")
    ours.channels_last = False  # the same arithmetic as torchvision (test_parity_torchvision)
    assert ours.class_names[:3] == ["person", "bicycle", "car"] and len(ours.class_names) == 90
    with torch.no_grad():
        theirs, mine = reference(IMAGE)[0], ours(IMAGE)[0]
    placeholders = torch.tensor([i for i, c in enumerate(coco_categories()) if c == "N/A"])
    assert ours.config["placeholder_classes"] == placeholders.tolist()
    shown = ~torch.isin(theirs["labels"], placeholders)
    assert shown.sum() >= 3
    assert not torch.isin(mine["labels"], placeholders).any()
    _same_detections(mine, {k: v[shown] for k, v in theirs.items()})


def _same_detections(a, b):
    """The same detections up to float rounding, in any order among near-equal scores:
    each of ``a`` has one of ``b`` with the same label, its box within 0.005 px and its score
    within 1e-4."""
    assert len(a["boxes"]) == len(b["boxes"])
    box = torch.cdist(a["boxes"], b["boxes"], p=float("inf")) <= 5e-3
    score = (a["scores"][:, None] - b["scores"][None]).abs() <= 1e-4
    label = a["labels"][:, None] == b["labels"][None]
    match = box & score & label
    assert match.any(1).all() and match.any(0).all()


def test_placeholder_classes_are_never_reported(tiny_model):
    """Logits by hand: of four RoIs, the best two are class 2 (a placeholder); the top-3
    kept before it is dropped leave one class-1 detection."""
    heads = frcnn.build_model("resnet18_fpn", 4, placeholder_classes=[2]).roi_heads.eval()
    logits = torch.tensor([[0.0, 0, 5, 0], [0, 0, 4, 0], [0, 3, 0, 0], [0, 0, 0, 2]])
    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [0, 40, 10, 50]])
    heads.detections_per_img, heads.score_thresh = 3, 0.2
    (out,) = heads.postprocess(logits, torch.zeros(4, 16), [boxes], [(60, 60)])
    assert out["labels"].tolist() == [1]
    torch.testing.assert_close(out["boxes"], boxes[2:3])
    with pytest.raises(ValueError, match="placeholder_classes"):
        frcnn.build_model("resnet18_fpn", 4, placeholder_classes=[4])


def test_offline_says_where_to_put_the_file(hub, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    path = cache_path("resnet50_fpn_v2")
    with pytest.raises(RuntimeError) as err:
        frcnn.load_model("coco:resnet50_fpn_v2")
    message = str(err.value)
    assert COCO_WEIGHTS_BASE + COCO_WEIGHTS["resnet50_fpn_v2"] in message
    assert str(path) in message and "\n" not in message


def test_downloads_once_checking_the_hash_in_the_name(hub, monkeypatch, tmp_path):
    """A missing file is downloaded as torch.hub does (the SHA-256 prefix in the file name
    checked); once cached, it is used without any download."""
    seed_cache("mobilenet_v3_large_320_fpn")
    cached = cache_path("mobilenet_v3_large_320_fpn")
    published = cached.read_bytes()
    cached.unlink()
    calls = []

    def download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        with open(dst, "wb") as f:
            f.write(published)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    frcnn.load_model("coco:mobilenet_v3_large_320_fpn")
    frcnn.load_model("coco:mobilenet_v3_large_320_fpn")
    url = COCO_WEIGHTS_BASE + "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth"
    assert calls == [(url, "907ea3f9")]


def test_a_model_without_coco_weights_names_those_with_them(hub):
    with pytest.raises(
        ValueError,
        match="no published COCO weights for model 'resnet18_fpn'.*coco:mobilenet_v3_large_320_fpn",
    ):
        frcnn.load_model("coco:resnet18_fpn")
    assert main(["predict", "--weights", "coco:resnet18_fpn", "x.png"]) == 2


def test_predict_cli_names_coco_classes(hub, tmp_path):
    from PIL import Image

    seed_cache("mobilenet_v3_large_320_fpn")
    image = tmp_path / "street.png"
    Image.frombytes(
        "RGB", (240, 180), torch.randint(0, 255, (180 * 240 * 3,)).byte().numpy().tobytes()
    ).save(image)
    out = tmp_path / "pred"
    args = ["predict", "--weights", "coco:mobilenet_v3_large_320_fpn", str(image)]
    assert main([*args, "--out", str(out), "--conf", "0.05"]) == 0
    found = json.loads(next(out.glob("*.json")).read_text())
    text = json.dumps(found)
    assert "person" in text and "N/A" not in text


def test_models_marks_those_with_coco_weights(capsys):
    assert main(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert "coco" in lines["resnet50_fpn_v2"] and "coco" in lines["mobilenet_v3_large_320_fpn"]
    assert "coco" not in lines["resnet18_fpn"]


def test_coco_named_classes_keep_their_rows(hub, frcnn_log):
    """A two-class dataset named "dog" and "zebra crossing": the dog rows are COCO's dog rows
    (classification and box regression), the other class's are fresh; background's are
    COCO's background rows."""
    reference = seed_cache("mobilenet_v3_large_320_fpn")
    coco = reference.roi_heads.box_predictor
    model = frcnn.build_model(
        "mobilenet_v3_large_320_fpn", weights="coco", class_names=["Dog", "zebra crossing"]
    )
    mine = model.roi_heads.predictor
    assert mine.cls_score.out_features == 3
    for row, theirs in ((0, 0), (1, DOG)):
        assert torch.equal(mine.cls_score.weight[row], coco.cls_score.weight[theirs])
        assert torch.equal(mine.cls_score.bias[row], coco.cls_score.bias[theirs])
        assert torch.equal(
            mine.bbox_pred.weight[4 * row : 4 * row + 4],
            coco.bbox_pred.weight[4 * theirs : 4 * theirs + 4],
        )
    fresh = mine.cls_score.weight[2]
    assert not any(torch.equal(fresh, coco.cls_score.weight[i]) for i in range(91))
    assert mine.cls_score.bias[2] == 0  # fresh initialisation: zero bias
    assert any("from scratch: zebra crossing" in m and "Dog" in m for m in frcnn_log)
    # the rest of the network is COCO's
    body = "backbone.body.0.0.weight"
    assert torch.equal(model.state_dict()[body], reference.state_dict()[body])
    off = frcnn.build_model(
        "mobilenet_v3_large_320_fpn",
        weights="coco",
        class_names=["dog", "zebra crossing"],
        keep_coco_classes=False,
    )
    assert not torch.equal(off.roi_heads.predictor.cls_score.weight[1], coco.cls_score.weight[DOG])


def test_synonyms_match_coco_names():
    from frcnn.modeling.class_rows import class_key, matching_classes

    assert class_key("Motorbike") == "motorcycle" and class_key("tv_monitor") == "tv"
    assert class_key("diningtable") == class_key("Dining-Table") == "dining table"
    names = coco_categories()[1:]
    skip = [i for i, c in enumerate(coco_categories()) if c == "N/A"]
    rows = matching_classes(names, ["aeroplane", "sofa", "zebra crossing", "N/A"], skip)
    assert rows == {1: 5, 2: 63}  # airplane, couch; placeholders are never a match


def test_train_from_coco_by_name(hub, tmp_path, frcnn_log, capsys):
    """``frcnn train --weights coco:NAME`` trains NAME with the finetune recipe, COCO-named
    classes (a synonym among them) starting from COCO's rows."""
    from frcnn.data.synth import write_synth

    seed_cache("mobilenet_v3_large_320_fpn")
    ann = write_synth(tmp_path / "d", 6, size=96, seed=0)
    data = json.loads(ann.read_text())
    for cat, name in zip(data["categories"], ["dog", "zebra crossing", "Motorbike"], strict=False):
        cat["name"] = name
    ann.write_text(json.dumps(data))
    out = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "d"), "--weights", "coco:mobilenet_v3_large_320_fpn"]
    assert main([*args, "--epochs", "1", "--img-size", "128", "--out", str(out)]) == 0
    assert "finetune recipe" in capsys.readouterr().out
    config = (out / "config.yaml").read_text()
    assert "mobilenet_v3_large_320_fpn" in config and "frozen_bn" in config
    assert any("from scratch: zebra crossing" in m and "Motorbike" in m for m in frcnn_log)
    model = frcnn.load_model(out / "weights" / "last.safetensors")
    assert model.class_names[:2] == ["dog", "zebra crossing"]
    assert model.config["placeholder_classes"] == []


def test_relabelled_detector_maps_and_drops_by_lookup():
    from frcnn.inference.detectors import RelabelledDetector

    class Inner(torch.nn.Module):
        class_names = ["person", "car", "dog"]

        def forward(self, images):
            return [
                {
                    "boxes": torch.arange(12.0).reshape(3, 4),
                    "scores": torch.tensor([0.9, 0.8, 0.7]),
                    "labels": torch.tensor([3, 2, 1]),
                }
            ]

    # data classes: dog (1), person (2); the model's car is left out
    detector = RelabelledDetector(Inner(), torch.tensor([0, 2, -1, 1]), ["dog", "person"])
    (out,) = detector([torch.zeros(3, 4, 4)])
    assert out["labels"].tolist() == [1, 2]
    assert out["scores"].tolist() == pytest.approx([0.9, 0.7])
    assert out["boxes"][1].tolist() == [8.0, 9.0, 10.0, 11.0]
    assert detector.class_names == ["dog", "person"]


def _coco_named_data(root, n=4):
    from frcnn.data.synth import write_synth

    ann = write_synth(root, n, size=96, seed=0)
    data = json.loads(ann.read_text())
    for cat, name in zip(
        data["categories"], ["person", "Dog", "car", "motorbike", "cat"], strict=True
    ):
        cat["name"] = name
    ann.write_text(json.dumps(data))
    return root


def test_eval_calibrate_explain_take_coco_weights(hub, tmp_path, monkeypatch, frcnn_log):
    """The COCO model scored on data of five COCO classes by name; its calibrated copy is
    written to the working folder under its name, as an export would be; explain draws it.
    (Random MobileNet weights give near-tied scores that ONNX Runtime orders differently, so
    the export of a placeholder model is checked on the small model in test_export.)"""
    from frcnn.deploy.export import default_out

    seed_cache("mobilenet_v3_large_320_fpn")
    data = _coco_named_data(tmp_path / "d")
    monkeypatch.chdir(tmp_path)
    weights = "coco:mobilenet_v3_large_320_fpn"
    assert main(["eval", "--weights", weights, "--data", str(data), "--conf", "0.05"]) == 0
    assert any("by name: person -> person, dog -> Dog" in m for m in frcnn_log)
    assert main(["calibrate", "--weights", weights, "--data", str(data)]) == 0
    calibrated = tmp_path / "mobilenet_v3_large_320_fpn_coco.calibrated.safetensors"
    assert frcnn.load_model(calibrated).calibration is not None
    assert default_out(weights, "onnx") == Path("mobilenet_v3_large_320_fpn_coco.onnx")
    image = next((data / "images").glob("*.png"))
    assert main(["explain", "--weights", weights, str(image), "--out", "x"]) == 0
    assert (tmp_path / "x" / "explain.html").is_file()
