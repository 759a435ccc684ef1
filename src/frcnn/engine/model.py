"""The model a training run starts from: built from the config, optionally fine-tuned from
saved weights."""

from __future__ import annotations

import logging

import numpy as np
from torch import Tensor

from ..config import TrainConfig
from ..data.records import DetectionDataset
from ..errors import InputError
from ..io.checkpoint import load_state_dict_file
from ..io.model_file import load_model, read_metadata
from ..io.zoo import coco_model, coco_name, is_coco
from ..modeling.builder import build_model
from ..modeling.class_rows import PREDICTOR, copy_class_rows, matching_classes
from ..modeling.detector import FasterRCNN
from .anchors import fitted_anchor_args

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
    (``eval.conf``, kept in its model files), anchors fitted to ``train`` where the config
    asks (``auto``) and starting weights from the config)."""
    args = dict(cfg.model.args)
    if cfg.data.img_size:
        args.setdefault("min_size", cfg.data.img_size)
        args.setdefault("max_size", cfg.data.img_size)
    if cfg.eval.max_dets:
        args.setdefault("box_detections_per_img", cfg.eval.max_dets)
    args = fitted_anchor_args(cfg, train, args)
    cw = cfg.model.class_weights
    if cw == "auto":
        args["class_weights"] = auto_class_weights(train)
    elif cw is not None:
        args["class_weights"] = list(cw)
    model = build_model(cfg.model.name, train.num_classes, **args)
    model.class_names = list(train.class_names)
    model.conf = cfg.eval.conf
    if cfg.model.weights:
        load_initial_weights(model, initial_weights(cfg.model.weights, cfg.model.name))
    return model


def initial_weights(weights: str, model_name: str) -> str:
    """``model.weights`` as a source: ``coco`` means the COCO weights of the model trained.

    Raises:
        ValueError: ``coco:NAME`` of another model than the one trained.
    """
    if weights == "coco":
        return f"coco:{model_name}"
    if is_coco(weights) and coco_name(weights) != model_name:
        raise InputError(
            f"model.weights {weights} are {coco_name(weights)}'s, but the model trained is "
            f"{model_name}: pass --model {coco_name(weights)} or --weights coco"
        )
    return weights


def _read_source(path: str) -> tuple[dict[str, Tensor], list[str] | None, list[int]]:
    """The state dict (frcnn names), class names and placeholder classes of a starting
    point: ``coco:NAME``, an frcnn model file, or a torchvision state dict (no names)."""
    if is_coco(path):
        model = coco_model(path)
    else:
        try:
            read_metadata(path)
            model = load_model(path)
        except ValueError:
            from ..io.convert import from_torchvision, is_torchvision_state

            raw = load_state_dict_file(path)
            return (from_torchvision(raw) if is_torchvision_state(raw) else raw), None, []
    return model.state_dict(), model.class_names, list(model.config.get("placeholder_classes", []))


def load_initial_weights(model: FasterRCNN, path: str) -> None:
    """Fine-tuning start: every parameter whose name and shape match is loaded; the box
    predictor's rows of classes named as the source's (COCO's, with synonyms) are copied
    from it when the source names its classes; the rest keeps its fresh initialisation."""
    source, names, placeholders = _read_source(path)
    own = model.state_dict()
    loaded = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    rows = None
    if names is not None and model.class_names is not None:
        loaded = {k: v for k, v in loaded.items() if not k.startswith(PREDICTOR)}
        rows = _class_rows(model, path, names, placeholders)
        if rows:
            loaded.update(copy_class_rows(own, source, {0: 0, **rows}))
    skipped = sorted(set(own) - set(loaded))
    model.load_state_dict(loaded, strict=False)
    theirs = source.get(f"{PREDICTOR}cls_score.weight")
    if rows is None and theirs is not None and theirs.shape[0] != model.num_classes:
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


def _class_rows(
    model: FasterRCNN, path: str, names: list[str], placeholders: list[int]
) -> dict[int, int]:
    """Which of the model's classes start from which source rows (none from COCO when
    ``keep_coco_classes`` is off), logged by name."""
    if is_coco(path) and not model.config.get("keep_coco_classes", True):
        log.info("classes from scratch (keep_coco_classes is off): all of them")
        return {}
    rows = matching_classes(names, model.class_names, placeholders)
    kept = [model.class_names[i - 1] for i in rows]
    fresh = [n for i, n in enumerate(model.class_names, start=1) if i not in rows]
    where = "COCO" if is_coco(path) else path
    log.info(
        "classes starting from %s's rows: %s; from scratch: %s",
        where,
        ", ".join(kept) or "none",
        ", ".join(fresh) or "none",
    )
    return rows
