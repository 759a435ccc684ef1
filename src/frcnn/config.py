"""The training configuration: typed sections, YAML files (safe_load), ``key=value`` overrides.

Only builders read this; modules take plain arguments.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .checks import CONFIG_KEYS, check_values, is_number
from .defaults import BATCH_SIZE, CONF, TILE_CACHE_MB, TILE_OVERLAP, VAL_SPLIT
from .errors import InputError, InputTypeError, UnknownKeyError
from .io.atomic import atomic_write_text
from .io.yaml_file import parse_yaml, read_yaml


@dataclass
class ModelSection:
    name: str = "resnet50_fpn"
    # Start from these weights: an frcnn model file, or a torchvision Faster R-CNN .pth.
    weights: str | None = None
    # Any frcnn.build_model option (min_size, anchor_sizes, norm, ...); anchor_sizes and
    # aspect_ratios may be "auto": fitted to the training boxes as frcnn anchors fits them.
    args: dict[str, Any] = field(default_factory=dict)
    # Fit both anchor options when the configured anchors' mean best-anchor IoU with the
    # training boxes (after the resize, on tiles when tiling) is below this (None: never).
    fit_anchors_below: float | None = None
    # Classification-loss weights: a list with one weight per class (background first), or
    # "auto" for inverse class frequency.
    class_weights: list[float] | str | None = None


@dataclass
class DataSection:
    train: str | None = None
    val: str | None = None
    # Hold out this fraction of the training images for validation when no val is given.
    val_split: float = VAL_SPLIT
    format: str | None = None
    images: str | None = None
    exif: bool = True
    augment: str | list[Any] = "default"
    # Share of training items made of four images (or tiles) in one (0: none).
    mosaic: float = 0.0
    min_visibility: float = 0.3
    # Repeat-factor sampling threshold for class imbalance (None: plain shuffling).
    repeat_threshold: float | None = None
    batch_size: int = BATCH_SIZE
    workers: int = 0
    # Longest image side for training and evaluation (None: the model's min/max size).
    img_size: int | None = None
    # Progressive resizing: [[first_epoch, size], ...], e.g. [[0, 320], [5, 640]].
    img_sizes: list[list[int]] | None = None
    tile: int | None = None
    overlap: float = TILE_OVERLAP
    tile_min_visibility: float = 0.5
    # Decoded images kept for their other tiles, MB per process (0: decode for every tile).
    tile_cache_mb: int = TILE_CACHE_MB
    # Streamed (hf:) training data: rows validated on (the first rows of --val, or, without
    # --val, the first rows of the training stream, never trained on); None: 500, or
    # val_split of the rows when their number is known and smaller.
    val_limit: int | None = None
    # Rows in the shuffle buffer of a streamed source (0: stream order).
    stream_buffer: int = 1000


@dataclass
class OptimSection:
    name: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    grad_clip: float | None = None
    accumulate: int = 1
    l1_lambda: float = 0.0
    # Evaluate, select and save an exponential moving average of the weights (Ultralytics'
    # ModelEMA): after step k, avg = d avg + (1 - d) w, d = ema_decay (1 - exp(-k / ema_tau)).
    ema: bool = False
    ema_decay: float = 0.9999
    ema_tau: float = 2000.0


@dataclass
class ScheduleSection:
    epochs: int = 12
    policy: str = "multistep"  # step | multistep | cosine | constant
    warmup_epochs: float = 1.0
    warmup_factor: float = 0.001
    # Where the rate is multiplied by gamma: epochs, or fractions of the run (values < 1).
    # Left out: the 1x recipe's positions scaled to the run (2/3 and 11/12 of it; "step":
    # every 7/12 of it), so any --epochs or --time-budget gets the whole schedule.
    step_size: float | None = None
    gamma: float = 0.1
    milestones: list[float] | None = None
    # Stop after this many minutes of wall time; the schedule is fitted to the budget.
    time_budget: float | None = None
    # Streamed (hf:) training data: optimiser steps in all, spread over schedule.epochs
    # (None: each epoch is one pass over the stream, when its length is known).
    steps: int | None = None


@dataclass
class EvalSection:
    conf: float = CONF  # score threshold for P/R/F1 and the confusion matrix
    score_weights: list[float] = field(default_factory=lambda: [0.5, 0.5])  # mAP50, F1
    top_k: int = 3
    patience: int | None = None
    every: int = 1
    # Most detections per image the COCO numbers count (maxDets); None: the model's
    # box_detections_per_img (100). Raise both for scenes with more objects.
    max_dets: int | None = None
    # Validation losses (a second, training-mode pass over the validation images or tiles)
    # in results.csv and results.png.
    val_loss: bool = True
    # Box sides in pixels bounding the per-size table's bins (e.g. [0, 16, 32, .inf]); None:
    # COCO's small < 32 <= medium < 96 <= large.
    size_bins: list[float] | None = None
    # Images in worst_images.jpg and report.html (0: none).
    worst_images: int = 8


@dataclass
class RunSection:
    out: str = "runs/train"
    seed: int = 0
    deterministic: bool = False
    # none | auto (bf16 where the device computes it natively, fp16 on other GPUs) | fp16 (CUDA) | bf16
    amp: str = "none"
    device: str = "auto"
    # CPU threads: 0 adapts before each epoch (every core, or one when another process keeps
    # the cores busy and one thread is faster); N uses N.
    threads: int = 0
    resume: bool = False
    # Stop this invocation after so many epochs (the schedule still spans schedule.epochs);
    # continue later with --resume. For time-limited jobs.
    stop_after_epochs: int | None = None
    nan_policy: str = "stop"  # stop | skip
    max_nan_skips: int = 10
    progress: bool = True
    # Without a progress bar (no terminal, or progress=false): a progress line every this
    # many seconds (0: none).
    log_interval: float = 30.0
    # Where each epoch's numbers go besides results.csv: tensorboard (when installed),
    # mlflow (frcnn[mlflow]), wandb (frcnn[wandb]); [] for none.
    loggers: list[str] = field(default_factory=lambda: ["tensorboard"])
    # A name shared by related runs: MLflow nests them under one parent run of that name,
    # W&B groups them. kfold sets it to its folder's name for its folds, tune for its trials.
    group: str | None = None


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    eval: EvalSection = field(default_factory=EvalSection)
    run: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> TrainConfig:
        """Refuse values that cannot mean anything (``epochs=0``, ``img_size=0``, ``tile=0``
        ...) instead of running with a silent substitute.

        Raises:
            ValueError: naming the key, the value and the accepted range.
        """
        s = self.schedule
        checks = [
            (
                "schedule.milestones",
                s.milestones,
                s.milestones is None or all(is_number(m) and m > 0 for m in s.milestones),
                "> 0 (epochs, or fractions of the run below 1)",
            ),
            (
                "data.img_sizes",
                self.data.img_sizes,
                self.data.img_sizes is None
                or (
                    isinstance(self.data.img_sizes, list)
                    and all(_size_entry(e) for e in self.data.img_sizes)
                ),
                "a list of [first_epoch, size] pairs, epochs >= 0 and sizes >= 32 "
                "(e.g. [[0, 320], [5, 640]])",
            ),
            (
                "run.loggers",
                self.run.loggers,
                isinstance(self.run.loggers, list) and set(self.run.loggers) <= set(LOGGERS),
                f"a list of {', '.join(LOGGERS)} (or [])",
            ),
            (
                "schedule.step_size",
                s.step_size,
                s.step_size is None or (is_number(s.step_size) and s.step_size > 0),
                "> 0 (epochs, or a fraction of the run below 1)",
            ),
        ]
        bad = [f"{key} must be {rule}, got {value!r}" for key, value, ok, rule in checks if not ok]
        if bad:
            raise InputError("; ".join(bad))
        # data.val_split only matters (and is checked) when no data.val is given
        keys = [k for k in CONFIG_KEYS if not (k == "data.val_split" and self.data.val)]
        check_values({key: self.value(key) for key in keys})
        return self

    def value(self, dotted: str) -> Any:
        """The value of a ``section.key`` (e.g. ``"eval.every"``)."""
        section, _, key = dotted.partition(".")
        return getattr(getattr(self, section), key)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


# What run.loggers may name.
LOGGERS = ("tensorboard", "mlflow", "wandb")

# What an anchors file (frcnn anchors --out) sets, under model.args.
ANCHOR_KEYS = ("anchor_sizes", "aspect_ratios")

# Keys people bring from Ultralytics and similar tools, and frcnn's name for each.
FOREIGN_KEYS = {
    "epochs": "schedule.epochs",
    "imgsz": "data.img_size",
    "img_size": "data.img_size",
    "batch": "data.batch_size",
    "batch_size": "data.batch_size",
    "lr0": "optim.lr",
    "lr": "optim.lr",
    "optimizer": "optim.name",
    "weight_decay": "optim.weight_decay",
    "momentum": "optim.momentum",
    "workers": "data.workers",
    "device": "run.device",
    "patience": "eval.patience",
    "seed": "run.seed",
    "conf": "eval.conf",
    "project": "run.out",
    "name": "run.out",
    "warmup_epochs": "schedule.warmup_epochs",
    "cos_lr": "schedule.policy",
    "amp": "run.amp",
    "resume": "run.resume",
}


def _suggest(word: str, options: list[str]) -> str:
    hint = difflib.get_close_matches(word, options, n=1)
    return f" Did you mean {hint[0]!r}?" if hint else ""


def _set(obj: Any, dotted: str, value: Any, where: str, prefix: str = "") -> None:
    head, _, rest = dotted.partition(".")
    names = [f.name for f in dataclasses.fields(obj)]
    if head not in names:
        hint = _suggest(head, names)
        if not prefix and dotted in FOREIGN_KEYS and not isinstance(value, dict):
            hint = f" Did you mean {FOREIGN_KEYS[dotted]!r}? (frcnn keys are section.key)"
        if not prefix and dotted in ANCHOR_KEYS:
            hint = f" Did you mean 'model.args.{dotted}'? (an anchors file: train --anchors FILE)"
        raise UnknownKeyError(
            f"{where}: unknown key {prefix + dotted!r}.{hint} Known: {', '.join(names)}"
        )
    current = getattr(obj, head)
    if rest:
        if dataclasses.is_dataclass(current):
            _set(current, rest, value, where, f"{prefix}{head}.")
        elif isinstance(current, dict):  # model.args.<option>: checked by build_model
            current[rest] = value
        else:
            raise UnknownKeyError(f"{where}: {head!r} has no sub-keys (got {dotted!r})")
    elif dataclasses.is_dataclass(current):
        if not isinstance(value, dict):
            raise InputTypeError(f"{where}: {head!r} is a section; give a mapping")
        for key, sub in value.items():
            _set(current, str(key), sub, where, f"{prefix}{head}.")
    else:
        setattr(
            obj,
            head,
            _coerce(value, typing.get_type_hints(type(obj))[head], prefix + dotted, where),
        )


def _size_entry(entry: Any) -> bool:
    """A progressive-resize entry: ``[first_epoch, size]``."""
    return (
        isinstance(entry, (list, tuple))
        and len(entry) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in entry)
        and entry[0] >= 0
        and entry[1] >= 32
    )


def _coerce(value: Any, hint: Any, key: str, where: str) -> Any:
    """Numbers written as strings become numbers where the field is numeric: YAML reads
    ``1e-3`` (no dot) as a string; a list of names may be given as ``a,b``."""
    if not isinstance(value, str):
        return value
    if typing.get_origin(hint) is list and typing.get_args(hint) == (str,):
        return [v.strip() for v in value.split(",") if v.strip()]
    options = typing.get_args(hint) or (hint,)
    for kind in (int, float):
        if kind in options:
            try:
                return kind(value)
            except ValueError:
                if str not in options:
                    raise InputTypeError(
                        f"{where}: {key} must be a number, got {value!r}"
                    ) from None
    return value


def read_anchors(path: str | Path) -> dict[str, Any]:
    """The anchor options of a file ``frcnn anchors --out`` wrote: ``model: {args: {...}}``
    or (frcnn 0.1) the two keys at the top.

    Raises:
        ValueError: the file holds anything but ``anchor_sizes`` and ``aspect_ratios``.
    """
    data = read_yaml(path) or {}
    if isinstance(data, dict) and set(data) == {"model"} and isinstance(data["model"], dict):
        data = data["model"].get("args", {}) if set(data["model"]) == {"args"} else None
    if not isinstance(data, dict) or not data or set(data) - set(ANCHOR_KEYS):
        raise InputError(
            f"{path}: not an anchors file: expected model.args.anchor_sizes and "
            "model.args.aspect_ratios (what frcnn anchors --out writes); pass a full "
            "configuration with --config"
        )
    return {f"model.args.{key}": value for key, value in data.items()}


def config_path(path: str | Path) -> Path:
    """A configuration file: ``path`` itself, or the shipped recipe of that name
    (``cpu-fast``, ``tv-default``; see ``frcnn recipes``).

    Raises:
        FileNotFoundError: neither, naming the recipes.
    """
    from .recipes import recipe_names, recipe_path

    if Path(path).is_file():
        return Path(path)
    recipe = recipe_path(str(path))
    if recipe is None:
        raise FileNotFoundError(
            f"config {path}: no such file, and no recipe of that name (recipes: "
            f"{', '.join(recipe_names())})"
        )
    return recipe


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, **values: Any
) -> TrainConfig:
    """Defaults, then a YAML file (or a shipped recipe by name, see :func:`config_path`), then
    ``section.key=value`` overrides, then keyword values (``{"data.train": "x"}`` style keys).

    Raises:
        KeyError: an unknown key, with a did-you-mean.
    """
    cfg = TrainConfig()
    if path is not None:
        path = config_path(path)
        data = read_yaml(path) or {}
        if not isinstance(data, dict):
            raise InputTypeError(f"{path}: a config file must hold a mapping of sections")
        for key, value in data.items():
            _set(cfg, str(key), value, str(path))
    for item in overrides or []:
        key, sep, text = item.partition("=")
        if not sep:
            raise InputError(f"override {item!r} is not key=value (e.g. optim.lr=0.01)")
        _set(cfg, key.strip(), parse_yaml(text, f"override {item!r}"), "override")
    for key, value in values.items():
        if value is not None:
            _set(cfg, key, value, "argument")
    return cfg.validate()
