"""Anchors fitted to the training boxes when training starts: ``model.args.anchor_sizes``
and/or ``aspect_ratios`` set to ``auto``, or ``model.fit_anchors_below`` when the configured
anchors fit the boxes poorly (YOLOv5's autoanchor). The fit is ``frcnn anchors``' own (on
the tiles training sees when tiling); the fitted values go into the model's configuration,
so every model file of the run holds them."""

from __future__ import annotations

import logging
from typing import Any

from ..config import ANCHOR_KEYS, TrainConfig
from ..data.anchor_fit import NUM_LEVELS, AnchorFit, fit_anchors, mean_best_iou
from ..data.records import DetectionDataset
from ..data.tiles import tile_records
from ..errors import InputError
from ..modeling.builder import ModelConfig, model_config

log = logging.getLogger("frcnn")

AUTO = "auto"


def _lists(values: Any) -> list[list[float]]:
    return [[float(v) for v in level] for level in values]


def auto_keys(args: dict) -> set[str]:
    """The anchor options of the build options ``args`` left to the fit (``auto``)."""
    return {key for key in ANCHOR_KEYS if args.get(key) == AUTO}


def without_auto(args: dict) -> dict:
    """The build options less the anchor options left to the fit (``auto``)."""
    auto = auto_keys(args)
    return {k: v for k, v in args.items() if k not in auto}


def _fit(
    cfg: TrainConfig, train: DetectionDataset, base: ModelConfig
) -> tuple[AnchorFit | None, DetectionDataset]:
    """``frcnn anchors``' fit (9 clusters, seed 0) to the boxes training sees (its tiles
    when tiling) at the model's resize, compared with ``base``'s anchors; None without
    boxes."""
    d = cfg.data
    ds = tile_records(train, d.tile, d.overlap, d.tile_min_visibility) if d.tile else train
    min_size = base.min_size[-1] if isinstance(base.min_size, tuple) else base.min_size
    baseline = (_lists(base.anchor_sizes), _lists(base.aspect_ratios))
    try:
        return fit_anchors(ds, 9, min_size, base.max_size, base.fixed_size, baseline=baseline), ds
    except InputError:
        return None, ds


def fitted_anchor_args(cfg: TrainConfig, train: DetectionDataset, args: dict) -> dict:
    """``args`` (the model's build options) with ``auto`` anchors replaced by a fit to the
    boxes of ``train`` after the model's resize; with ``model.fit_anchors_below``, both are
    fitted when the configured anchors' mean best-anchor IoU with the boxes is below it.

    Raises:
        ValueError: ``auto`` for a model whose anchors are not one size per level of a
            five-level feature pyramid, or a training set without boxes.
    """
    auto = auto_keys(args)
    below = cfg.model.fit_anchors_below
    if not auto and below is None:
        return args
    base = model_config(cfg.model.name, 2, **without_auto(args))
    if len(base.anchor_sizes) != NUM_LEVELS or any(len(s) != 1 for s in base.anchor_sizes):
        if not auto:
            return args  # fits are for one size per FPN level; this model's are its own
        raise InputError(
            f"model.args {', '.join(sorted(auto))}: auto fits one anchor size per level of a "
            f"five-level feature pyramid (P2-P6), which {cfg.model.name} does not have; set "
            "model.args.anchor_sizes and aspect_ratios by hand"
        )
    fit, ds = _fit(cfg, train, base)
    if fit is None:
        if auto:
            raise InputError(f"{train.source}: no boxes to fit the anchors (auto) to")
        return args  # no boxes to check the anchors on (a streamed source)
    tile = cfg.data.tile
    where = f" in {len(ds.images)} tiles of {tile} px" if tile else ""
    if not auto:
        if fit.iou_default >= below:
            log.info(
                "anchors: the configured anchors fit the %d boxes%s (mean best-anchor IoU "
                "%.3f >= model.fit_anchors_below %.2f); kept",
                fit.num_boxes, where, fit.iou_default, below,
            )  # fmt: skip
            return args
    before = "default" if auto else "configured"
    auto = auto or set(ANCHOR_KEYS)
    sizes = fit.anchor_sizes if "anchor_sizes" in auto else _lists(base.anchor_sizes)
    ratios = fit.aspect_ratios if "aspect_ratios" in auto else _lists(base.aspect_ratios)
    log.info(
        "anchors: fitted to %d boxes%s: mean best-anchor IoU %.3f (%s) -> %.3f (fitted); "
        "anchor_sizes %s, aspect_ratios %s",
        fit.num_boxes, where, fit.iou_default, before, mean_best_iou(fit.box_sizes, sizes, ratios),
        [s[0] for s in sizes], ratios[0] if all(r == ratios[0] for r in ratios) else ratios,
    )  # fmt: skip
    return {**args, "anchor_sizes": sizes, "aspect_ratios": ratios}
