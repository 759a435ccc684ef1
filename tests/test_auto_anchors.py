import logging

import numpy as np
import pytest
import yaml
from test_train import TINY_RUN

import frcnn
from frcnn.cli import main
from frcnn.config import load_config
from frcnn.data import read_dataset
from frcnn.data.anchor_fit import mean_best_iou
from frcnn.data.synth import write_synth
from frcnn.engine.anchors import fitted_anchor_args
from frcnn.errors import InputError

AUTO = ["model.args.anchor_sizes=auto", "model.args.aspect_ratios=auto"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("auto-anchors")
    write_synth(root / "d", 12, 96, seed=2)
    return root / "d"


def _snippet(tmp_path, data, *extra) -> dict:
    out = tmp_path / "anchors.yaml"
    sizes = ["--min-size", "96", "--max-size", "96"]
    assert main(["anchors", str(data), *sizes, *extra, "--out", str(out)]) == 0
    return yaml.safe_load(out.read_text())["model"]["args"]


def test_mean_best_iou_by_hand():
    # one anchor 16 x 16: a 16 x 16 box fits it exactly; a 32 x 8 box overlaps it in
    # 16 x 8 = 128 of 256 + 256 - 128 = 384 px, IoU 1/3; mean (1 + 1/3) / 2 = 2/3
    assert mean_best_iou(np.array([[16.0, 16.0], [32.0, 8.0]]), [[16]], [[1.0]]) == pytest.approx(
        2 / 3
    )


def test_auto_anchors_equal_frcnn_anchors_and_are_in_the_model_file(
    shapes, tmp_path, capsys, frcnn_log
):
    expected = _snippet(tmp_path, shapes)
    capsys.readouterr()
    cfg = load_config(
        None,
        [*TINY_RUN, *AUTO],
        **{
            "data.train": str(shapes),
            "data.val": str(shapes),
            "run.out": str(tmp_path / "run"),
            "schedule.epochs": 1,
        },
    )
    result = frcnn.train(cfg)
    model = frcnn.load_model(result.last)
    assert [list(s) for s in model.config["anchor_sizes"]] == expected["anchor_sizes"]
    assert [list(r) for r in model.config["aspect_ratios"]] == expected["aspect_ratios"]
    line = next(m for m in frcnn_log if m.startswith("anchors: fitted to"))
    assert "(default) ->" in line and "(fitted)" in line
    # the run's configuration keeps asking for the fit; a resume refits the same values
    assert load_config(tmp_path / "run" / "config.yaml").model.args["anchor_sizes"] == "auto"


def test_auto_anchors_fit_the_tiles_and_keep_what_is_given(shapes, tmp_path):
    tiled = _snippet(tmp_path, shapes, "--tile", "48", "--overlap", "0.25")
    base = {"min_size": 96, "max_size": 96}
    cfg = load_config(None, [*TINY_RUN, "data.tile=48", "data.overlap=0.25"])
    ds = read_dataset(shapes)
    both = fitted_anchor_args(cfg, ds, {**base, "anchor_sizes": "auto", "aspect_ratios": "auto"})
    assert both["anchor_sizes"] == tiled["anchor_sizes"]
    assert both["aspect_ratios"] == tiled["aspect_ratios"]
    given = [[1.0, 2.0]] * 5
    sizes_only = fitted_anchor_args(
        cfg, ds, {**base, "anchor_sizes": "auto", "aspect_ratios": given}
    )
    assert sizes_only["anchor_sizes"] == tiled["anchor_sizes"]
    assert sizes_only["aspect_ratios"] == given
    with pytest.raises(InputError, match="five-level feature pyramid"):
        mobile = load_config(None, ["model.name=mobilenet_v3_large_fpn"])
        fitted_anchor_args(mobile, ds, {"anchor_sizes": "auto"})


def test_fit_anchors_below_refits_only_poorly_fitting_anchors(shapes, caplog):
    ds = read_dataset(shapes)
    args = {"min_size": 96, "max_size": 96, "anchor_sizes": [[16], [32], [64], [128], [256]]}
    # the shapes are 5% to 55% of 96 px: these anchors fit them with a mean best IoU of
    # about 0.7, so a threshold of 0.3 keeps them and one of 0.99 refits both options
    with caplog.at_level(logging.INFO, logger="frcnn"):
        low = load_config(None, ["model.fit_anchors_below=0.3"])
        assert fitted_anchor_args(low, ds, args) == args
        assert "kept" in caplog.text
        high = load_config(None, ["model.fit_anchors_below=0.99"])
        fitted = fitted_anchor_args(high, ds, args)
    assert fitted_anchor_args(load_config(None), ds, args) is args  # nothing asked
    assert fitted["anchor_sizes"] != args["anchor_sizes"] and "(configured) ->" in caplog.text
    with pytest.raises(ValueError, match="fit_anchors_below"):
        load_config(None, ["model.fit_anchors_below=0"])
