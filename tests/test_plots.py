"""Plots a person can read: whole-epoch axes, lr panel, confusion matrices with room for
their titles, ground truth and predictions in separate panels, large images cropped."""

import numpy as np
import pytest
from PIL import Image

from frcnn.evaluation import plots


def test_results_plot_has_whole_epochs_and_an_lr_panel(tmp_path, monkeypatch):
    (tmp_path / "results.csv").write_text(
        "epoch,loss_classifier,val_loss_classifier,lr,mAP50,precision\n1,0.5,0.6,0.01,0.0,\n"
    )
    panels = {}
    real = plots._epoch_panel

    def spy(ax, epochs, series, key):
        real(ax, epochs, series, key)
        panels[key] = (list(ax.get_xticks()), ax.get_ylim(), list(series))

    monkeypatch.setattr(plots, "_epoch_panel", spy)
    plots.plot_results(tmp_path / "results.csv", tmp_path / "results.png")
    assert list(panels) == ["loss_classifier", "lr", "mAP50", "precision"]
    assert panels["loss_classifier"][2] == ["train", "val"]  # validation loss beside training
    assert all(ticks == [1] for ticks, _, _ in panels.values())  # no 0.9, 1.1 ...
    assert panels["mAP50"][1] == (0, 0.1)  # not a +-0.05 axis around 0
    assert panels["precision"][1] == (0, 1)  # undefined: an empty, labelled panel
    assert (tmp_path / "results.png").stat().st_size > 0


def test_confusion_matrices_have_a_minimum_size(tmp_path):
    from types import SimpleNamespace

    result = SimpleNamespace(confusion=np.array([[3, 1], [2, 0]]), class_names=["a"], conf=0.25)
    plots.plot_confusions(result, tmp_path)
    for name in ("confusion_matrix.png", "confusion_matrix_normalized.png"):
        width, height = Image.open(tmp_path / name).size
        assert width >= 500 and height >= 500


def test_focus_window_centres_a_large_image_on_its_objects():
    boxes = np.array([[900, 900, 1000, 1000], [1100, 1000, 1200, 1100], [100, 100, 110, 110]])
    # centres x 950, 1150, 105 and y 950, 1050, 105: median (950, 950), window from 550
    assert plots.focus_window(1500, 1400, boxes, 800) == (550, 550, 1350, 1350)
    # near the edge: the window is moved inside the image
    assert plots.focus_window(1500, 1400, boxes + [600, 0, 600, 0], 800) == (700, 550, 1500, 1350)
    assert plots.focus_window(300, 200, boxes, 800) == (0, 0, 300, 200)  # small: all of it


def test_prediction_grid_shows_truth_and_predictions_side_by_side(tmp_path):
    image = Image.new("RGB", (2000, 1000), (0, 0, 0))
    truth = (np.array([[1000, 500, 1040, 540]], np.float32), np.array([1]))
    pred = {
        "boxes": np.array([[1002, 502, 1040, 540.0]]),
        "scores": np.array([0.9]),
        "labels": np.array([2]),
    }
    plots.prediction_grid([image], [truth], [pred], ["a", "b"], tmp_path / "g.jpg", cell=400)
    grid = np.asarray(Image.open(tmp_path / "g.jpg").convert("RGB")).astype(int)
    assert grid.shape == (400, 800, 3)  # two panels
    # the 800 px crop around the box is shown at half size: the box spans about 20 px there,
    # drawn in class 1's colour on the left, class 2's on the right
    left, right = grid[:, :400], grid[:, 400:]
    c1, c2 = np.array(plots.colour(1)), np.array(plots.colour(2))
    near = lambda part, c: (np.abs(part - c).sum(-1) < 60).sum()  # noqa: E731
    assert near(left, c1) > 30 and near(left, c2) < 5
    assert near(right, c2) > 30 and near(right, c1) < 5


@pytest.mark.parametrize("show_labels", [True, False])
def test_drawn_labels_can_be_hidden_and_lines_set(show_labels):
    image = Image.new("RGB", (200, 200), (0, 0, 0))
    drawn = plots.draw_detections(
        image,
        np.array([[50, 80, 150, 150]]),
        np.array([1]),
        ["a"],
        np.array([0.9]),
        width=5,
        show_labels=show_labels,
        show_scores=False,
    )
    pixels = np.asarray(drawn).astype(int)
    assert (pixels[80:85, 100] == plots.colour(1)).all()  # a 5 px line
    label_area = pixels[60:78, 52:70]
    assert bool(label_area.any()) is show_labels


def test_the_f1_curve_legend_shows_the_best_f1_at_its_threshold(tmp_path, monkeypatch):
    from types import SimpleNamespace

    x = np.linspace(0, 1, 5)
    curve = np.array([[0.2, 0.6, 0.8, 0.4, 0.0]])  # best 0.8 at 0.5; 0.6 at conf 0.25
    result = SimpleNamespace(
        curves={"threshold": x, "f1": curve},
        class_names=["a"],
        per_class=[{"instances": 3}],
        f1=0.6,
        f1_best=0.8,
        best_threshold=0.5,
    )
    labels = []
    real = plots._finish_curve
    monkeypatch.setattr(
        plots,
        "_finish_curve",
        lambda fig, ax, *a: labels.extend(ax.get_legend_handles_labels()[1]) or real(fig, ax, *a),
    )
    plots.plot_f1_curve(result, tmp_path / "F1.png")
    assert labels[-1] == "all classes 0.80 at 0.500"
