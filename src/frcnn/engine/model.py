"""The model a training run starts from: built from the config, optionally fine-tuned from
saved weights."""

from __future__ import annotations

import logging

import numpy as np

from ..config import TrainConfig
from ..data.records import DetectionDataset
from ..io.checkpoint import load_state_dict_file
from ..io.model_file import load_model, read_metadata
from ..modeling.builder import build_model
from ..modeling.detector import FasterRCNN

log = logging.getLogger("frcnn")


def auto_class_weights(ds: DetectionDataset) -> list[float]:
    """Inverse class frequency, normalised to mean 1 over the classes; background 1."""
    fg = ds.instance_counts()[1:]
    inv = np.where(fg > 0, 1.0 / np.maximum(fg, 1), 0.0)
    inv = inv / inv[fg > 0].mean() if (fg > 0).any() else np.ones_like(fg)
    return [1.0, *np.round(inv, 6).tolist()]


def build_training_model(cfg: TrainConfig, train: DetectionDataset) -> FasterRCNN:
    """The configured detector for ``train``'s classes (image size, class weights, the
    detections kept per image (``eval.max_dets``), the score threshold it is scored at
    (``eval.conf``, kept in its model files) and starting weights from the config)."""
    args = dict(cfg.model.args)
    if cfg.data.img_size:
        args.setdefault("min_size", cfg.data.img_size)
        args.setdefault("max_size", cfg.data.img_size)
    if cfg.eval.max_dets:
        args.setdefault("box_detections_per_img", cfg.eval.max_dets)
    cw = cfg.model.class_weights
    if cw == "auto":
        args["class_weights"] = auto_class_weights(train)
    elif cw is not None:
        args["class_weights"] = list(cw)
    model = build_model(cfg.model.name, train.num_classes, **args)
    model.class_names = list(train.class_names)
    model.conf = cfg.eval.conf
    if cfg.model.weights:
        load_initial_weights(model, cfg.model.weights)
    return model


def load_initial_weights(model: FasterRCNN, path: str) -> None:
    """Fine-tuning start: every parameter whose name and shape match is loaded; the rest
    (e.g. a predictor for another number of classes) keeps its fresh initialisation."""
    try:
        read_metadata(path)
        source = load_model(path).state_dict()
    except ValueError:
        from ..io.convert import from_torchvision

        raw = load_state_dict_file(path)
        source = (
            from_torchvision(raw)
            if any(k.startswith("roi_heads.box_head.fc6") for k in raw)
            else raw
        )
    own = model.state_dict()
    loaded = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(own) - set(loaded))
    model.load_state_dict(loaded, strict=False)
    theirs = source.get("roi_heads.predictor.cls_score.weight")
    if theirs is not None and theirs.shape[0] != model.num_classes:
        log.warning(
            "warning: %s predicts %d classes (background included), the data has %d: the box "
            "predictor starts from fresh weights and learns the new classes",
            path,
            theirs.shape[0],
            model.num_classes,
        )
    log.info(
        "weights from %s: %d tensors loaded, %d kept fresh%s",
        path,
        len(loaded),
        len(skipped),
        f" ({', '.join(skipped[:4])}{' ...' if len(skipped) > 4 else ''})" if skipped else "",
    )
