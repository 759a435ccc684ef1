"""``frcnn train``: data -> model -> epochs of training and validation -> a run folder.

The run folder (``run.out``): ``config.yaml``, ``results.csv``, ``log.txt``, TensorBoard
events (when tensorboard is installed), ``weights/{best,last}.safetensors`` plus the top-k
``weights/epoch<N>.safetensors``, ``weights/last.state.pt`` (optimiser, scheduler, RNG and
every hook's state, for ``--resume``), ``metrics.json`` and the plots.

The :class:`Trainer` runs the loop; everything around it is a hook (:mod:`.hooks`).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file

from ..config import TrainConfig
from ..data.check import DataReport
from ..data.sources import is_hub_source
from ..errors import InputError
from ..evaluation.report import EvalResult, evaluate_detections
from ..inference.compose import compose
from ..inference.options import InferenceOptions, detection_limit
from ..inference.predict import predict_batches
from ..io.atomic import atomic_link, remove_orphans
from ..io.checkpoint import atomic_torch_save, load_training_state
from ..io.model_file import load_model, save_model
from ..modeling.builder import model_config
from ..modeling.detector import FasterRCNN
from . import hooks as H
from .anchors import without_auto
from .averaging import WeightAverage
from .data import build_loaders, data_warnings, load_datasets, subset, val_loader
from .device import native_bf16, resolve_amp, resolve_device
from .distributed import (
    all_gather_list,
    broadcast,
    cleanup,
    init_distributed,
    sync_batch_norms,
)
from .elastic import mark, rejoin
from .eval_budget import EVAL_SHARE, measure_eval_cost, plan_evaluation
from .loop import StepOptions, train_one_epoch, validation_losses
from .model import build_training_model
from .optim import LRSchedule, build_optimizer, schedule_warnings
from .run_folder import (
    RunLock,
    rng_state,
    run_folder,
    seed_everything,
    set_rng_state,
    setup_logging,
)
from .state import WEIGHTS_SAVED, TrainState
from .stream import Streamed, is_streamed, load_streamed, stream_lines
from .val_split import write_val_split

log = logging.getLogger("frcnn")

STATE_FORMAT = 2  # last.state.pt: 1 was frcnn 0.1.0's flat dictionary


@dataclass
class TrainResult:
    """What ``frcnn train`` prints at the end; epochs counted from 1, as in ``results.csv``."""

    out: Path
    best: Path | None
    last: Path
    epochs: int
    best_epoch: int | None
    metrics: dict = field(default_factory=dict)
    data_report: DataReport | None = None


class Trainer:
    """Runs the training loop; hooks do the rest (see :mod:`frcnn.engine.hooks`).

    Hooks read the run's :class:`~frcnn.engine.state.TrainState` (``trainer.state``); the
    trainer itself offers what acts on the model: ``model`` (DDP-wrapped under torchrun)
    and ``raw_model``, ``optimizer``, ``evaluate(model)`` and ``eval_max_dets()``.

    Args:
        cfg: the run's configuration.
        callbacks: user hooks, called after the built-in ones.
        clock: seconds as a float (``time.perf_counter``); tests pass a fake one.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        callbacks: Sequence[H.Hook] = (),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        cfg.validate()
        _check_before_start(cfg)
        self._own_group = not (dist.is_available() and dist.is_initialized())
        self.info = init_distributed()  # a group joined before (kfold's) stays for its owner
        self.cfg = cfg = rejoin(cfg, self.info)  # torchrun restarted the job: resume it
        if cfg.run.resume and not (Path(cfg.run.out) / "weights" / "last.state.pt").is_file():
            raise FileNotFoundError(
                f"--resume: {Path(cfg.run.out) / 'weights' / 'last.state.pt'} does not exist; "
                "give the --out folder of an earlier run, or start without --resume"
            )
        self._extend = False
        self.device = resolve_device(cfg.run.device)
        if self.info.enabled and self.device.type == "cuda":
            torch.cuda.set_device(self.info.local_rank)
            self.device = torch.device("cuda", self.info.local_rank)
        out = run_folder(cfg.run.out, cfg.run.resume) if self.info.is_main else Path(cfg.run.out)
        self.out = Path(broadcast(str(out), self.info))
        self.lock = RunLock(self.out) if self.info.is_main else None  # before any write
        self.weights = self.out / "weights"
        if self.info.is_main:
            self.weights.mkdir(parents=True, exist_ok=True)
            mark(self.out)  # for a restart of this torchrun job
        setup_logging(self.out if self.info.is_main else None, self.info)
        if self.info.is_main:
            removed = remove_orphans([self.out, self.weights])
            if removed:
                log.info("removed %d unfinished temporary files of an interrupted run", removed)
        seed_everything(cfg.run.seed + self.info.rank, cfg.run.deterministic)
        self.callbacks = list(callbacks)
        self.state = TrainState(
            cfg=cfg,
            info=self.info,
            device=self.device,
            out=self.out,
            weights=self.weights,
            clock=clock,
            start=clock(),
            epoch_start=clock(),
            trainer=self,
        )

    # ---- the loop ---------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train as configured; returns where everything went. The run folder is locked
        until it returns (or fails)."""
        try:
            return self._fit()
        finally:
            if self.lock is not None:
                self.lock.release()

    def _fit(self) -> TrainResult:
        s = self.state
        s.start = self.clock()
        saved = self._read_resume_state() if self.cfg.run.resume else None  # before any write
        self._setup()
        self.hooks = H.ordered_hooks(self._default_hooks() + self.callbacks)
        if saved is not None:
            self._resume(saved)
        self._call("before_train")
        while s.epoch + 1 < s.epochs_total and s.stop_reason is None:
            s.epoch += 1
            s.epoch_ending, s.epoch_start = False, self.clock()
            self._call("before_epoch")
            self.loaders.set_epoch(s.epoch)
            s.stats = train_one_epoch(
                self.model,
                self._batches(),
                self.optimizer,
                self.scheduler,
                self.scaler,
                self.options,
                self.device,
                s.epoch,
                should_stop=lambda: s.epoch_ending,
                on_step=self._after_step,
            )
            self._add_up_ranks(s.stats)
            self._progress()
            self._call("after_epoch")
            if self.info.is_main:
                self.save_state()
            s.stop_reason = broadcast(s.stop_reason, self.info)
        if s.stop_reason:
            log.info("%s", s.stop_reason)
        self._call("after_train")
        self.loaders.close()
        if self._own_group:
            cleanup(self.info)
        return self._train_result()

    def _add_up_ranks(self, stats) -> None:
        """Under torchrun, the epoch's counts (images, unreadable images, dropped boxes) of
        every rank, added up, for the log line."""
        if not self.info.enabled:
            return
        names = ("images", "unreadable", "aug_dropped", "invalid_dropped", "nan_skipped")
        parts = all_gather_list([[getattr(stats, n) for n in names]], self.info)
        for name, total in zip(names, map(sum, zip(*parts, strict=True)), strict=True):
            setattr(stats, name, total)

    def _after_step(self, i: int, losses: dict[str, float], images: int) -> None:
        s = self.state
        s.batch_in_epoch, s.step_losses, s.step_images = i, losses, images
        stepped = int(self.scheduler.last_epoch) > s.global_step  # not while accumulating
        self._progress()
        if self.average is not None and stepped:
            self.average.update(self.raw_model)
        self._call("after_step")

    def _progress(self) -> None:
        """The optimiser's progress into the state: steps taken (resumes included), rate."""
        self.state.global_step = int(self.scheduler.last_epoch)
        self.state.lr = float(self.optimizer.param_groups[0]["lr"])

    def _call(self, event: str) -> None:
        for hook in self.hooks:
            getattr(hook, event)(self.state)

    @property
    def clock(self) -> Callable[[], float]:
        return self.state.clock

    # ---- what hooks call --------------------------------------------------------------
    def averaged(self) -> AbstractContextManager:
        """The weights runs evaluate, select and save in ``raw_model`` inside: the moving
        average with ``optim.ema``, else the weights themselves."""
        if self.average is None:
            return nullcontext(self.raw_model)
        return self.average.applied(self.raw_model)

    def evaluate(self, model: FasterRCNN) -> EvalResult | None:
        """COCO metrics of ``model`` on the validation data (gathered from every rank; the
        result on the main process, None elsewhere); the time taken is recorded. A tiled run
        predicts each validation image (or held-out block) in tiles at the training scale,
        merged as ``frcnn predict --tile`` merges them, and scores the whole image."""
        start = self.clock()
        detector = compose([model], validation_options(self.cfg))
        predictions = all_gather_list(predict_batches(detector, self.loaders.val), self.info)
        if self.val_loss:
            self._val_losses(model)
        self.state.eval_seconds.append(self.clock() - start)
        if not self.info.is_main:
            return None
        unique = {p["image_id"]: p for p in predictions}  # DistributedSampler may pad with repeats
        e = self.cfg.eval
        return evaluate_detections(
            self.val_data,
            list(unique.values()),
            e.conf,
            tuple(e.score_weights),
            self.eval_max_dets(),
            e.size_bins,
        )

    def eval_max_dets(self) -> int:
        """The most detections per image the evaluation counts: ``eval.max_dets``, else the
        model's own limit."""
        return detection_limit(validation_options(self.cfg), self.raw_model)

    def _val_losses(self, model: FasterRCNN) -> None:
        """``state.val_losses``: mean validation losses per image over every rank (called
        only when ``self.val_loss``; ``state.val_losses`` stays empty otherwise)."""
        self.state.val_losses = losses = {}
        means, n = validation_losses(model, self.loaders.val_loss, self.device, self.amp)
        parts = [p for p in all_gather_list([(means, n)], self.info) if p[1]]
        total = sum(n for _, n in parts)
        for key in parts[0][0] if parts else []:
            losses[key] = sum(m[key] * n for m, n in parts) / total

    # ---- set-up -----------------------------------------------------------------------
    def _setup(self) -> None:
        """Data, model (DDP-wrapped under torchrun), optimiser, schedule and step options."""
        cfg, o, s = self.cfg, self.cfg.optim, self.cfg.schedule
        self._load_data()
        self.loaders = build_loaders(cfg, self.train_data, self.val_data, self.info, self.streamed)
        self.raw_model = build_training_model(cfg, self.train_data).to(self.device)
        norm = self.raw_model.config.get("norm") or ""
        self.raw_model = sync_batch_norms(self.raw_model, norm, self.info, self.device)
        self.model = self.raw_model
        if self.info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.raw_model, device_ids=ids)
        self.optimizer = build_optimizer(
            self.raw_model, o.name, o.lr, o.momentum, o.nesterov, o.weight_decay
        )
        self.average = WeightAverage(self.raw_model, o.ema_decay, o.ema_tau) if o.ema else None
        self.batches_per_epoch = len(self.loaders.train)
        self.steps_per_epoch = max(1, math.ceil(self.batches_per_epoch / o.accumulate))
        self.schedule = LRSchedule(
            total_steps=s.epochs * self.steps_per_epoch,
            epochs=s.epochs,
            policy=s.policy,
            warmup_steps=int(s.warmup_epochs * self.steps_per_epoch),
            warmup_factor=s.warmup_factor,
            step_size=s.step_size,
            gamma=s.gamma,
            milestones=None if s.milestones is None else list(s.milestones),
        )
        if self.info.is_main:
            for warning in schedule_warnings(self.schedule, self.steps_per_epoch):
                log.warning("warning: %s", warning)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule)
        self.amp = self._mixed_precision()
        self.scaler = torch.amp.GradScaler("cuda") if self.amp == "fp16" else None
        self.options = StepOptions(
            self.amp,
            o.grad_clip,
            o.accumulate,
            o.l1_lambda,
            cfg.run.nan_policy,
            cfg.run.max_nan_skips,
        )
        self._plan_evaluation()
        self._fill_state()

    def _load_data(self) -> None:
        """The training and validation data (a streamed source: its classes and validation
        images), said in the log and recorded in the run folder."""
        cfg = self.cfg
        self.streamed: Streamed | None = None
        if is_streamed(cfg):
            self.streamed, val_report = load_streamed(cfg)
            self.train_data, self.val_data = self.streamed.train, self.streamed.val
            self.data_report = None
            self.data_lines = stream_lines(cfg, self.streamed, val_report)
        else:
            self.train_data, self.val_data, train_report, val_report = load_datasets(cfg)
            self.data_report = train_report
            self.data_lines = self._data_lines(train_report, val_report)
        if self.info.is_main:
            for line in self.data_lines:
                log.info("%s", line)
            streamed = self.streamed is not None
            for warning in data_warnings(self.train_data, self.val_data, streamed):
                log.warning("warning: %s", warning)
            cfg.save(self.out / "config.yaml")
            limit = self.streamed.val_rows if self.streamed is not None else None
            write_val_split(self.out, cfg, self.val_data, limit)

    def _plan_evaluation(self) -> None:
        """``self.val_loss`` (whether evaluations run the validation-loss pass) and, under a
        time budget, the evaluation it affords, timed on one validation image before
        training (:mod:`.eval_budget`): a random subset of the validation images and no
        validation-loss pass when a full evaluation would cost too much."""
        cfg, st = self.cfg, self.state
        self.val_loss = bool(cfg.eval.val_loss and self.loaders.val_loss is not None)
        minutes = cfg.schedule.time_budget
        if not minutes or not len(self.val_data):
            return
        loss_batches = self.loaders.val_loss if self.val_loss else None
        budget, ranks = minutes * 60, self.info.world_size
        cost = measure_eval_cost(
            self.raw_model,
            validation_options(cfg),
            self.loaders.val,
            loss_batches,
            self.amp,
            self.clock,
            budget * EVAL_SHARE,
            ranks,
        )
        cost = broadcast(cost, self.info)  # every rank plans with rank 0's figures
        plan = plan_evaluation(len(self.val_data), cost, budget, cfg.run.seed, ranks)
        st.eval_estimate, self.val_loss = plan.seconds, plan.val_loss
        if plan.note and self.info.is_main:
            log.warning("warning: %s", plan.note)
        if plan.indices is not None:
            self.val_data = subset(self.val_data, plan.indices, "val")
            decoded = self.loaders.val.dataset.decoded
            self.loaders.val = val_loader(cfg, self.val_data, self.info, decoded)

    def _fill_state(self) -> None:
        """What set-up fixed, into the state hooks read."""
        cfg, st = self.cfg, self.state
        st.train_data, st.val_data, st.data_lines = self.train_data, self.val_data, self.data_lines
        st.steps_per_epoch, st.batches_per_epoch = self.steps_per_epoch, self.batches_per_epoch
        st.batch_size, st.accumulate = cfg.data.batch_size, cfg.optim.accumulate
        st.eval_every, st.num_val_images = cfg.eval.every, len(self.val_data)
        st.schedule, st.epochs_total = self.schedule, cfg.schedule.epochs
        self._progress()

    def _mixed_precision(self) -> str:
        """``run.amp`` resolved for this device, said in the log when chosen or doubtful."""
        amp = resolve_amp(self.device, self.cfg.run.amp)
        if self.cfg.run.amp == "auto":
            log.info("mixed precision (amp=auto): %s on %s", amp, self.device.type)
        elif amp == "bf16" and not native_bf16(self.device):
            log.warning(
                "warning: amp=bf16 on a %s without native bfloat16 is emulated and slower than "
                "float32; use amp=auto (bf16 only where it is native) or amp=none",
                self.device.type,
            )
        return amp

    def _default_hooks(self) -> list[H.Hook]:
        """The built-in hooks, in the order they run."""
        cfg = self.cfg
        hooks: list[H.Hook] = []
        if cfg.data.img_sizes:
            hooks.append(H.ProgressiveResize(cfg.data.img_sizes))
        if cfg.schedule.time_budget:
            hooks.append(H.TimeBudget(cfg.schedule.time_budget, cfg.schedule.epochs))
        hooks += [
            H.CpuThreads(cfg.run.threads),
            H.CpuRecipeAdvice(),
            H.EvalSchedule(cfg.eval.every),
            H.ResultsCSV(self.out / "results.csv"),
            *([H.TensorBoard(self.out)] if "tensorboard" in cfg.run.loggers else []),
            H.EpochLog(),
        ]
        if not self._progress_bar() and cfg.run.log_interval > 0:
            hooks.append(H.ProgressLog(cfg.run.log_interval))
        hooks.append(H.Checkpointer(self.weights, cfg.eval.top_k))
        if cfg.eval.patience is not None:
            hooks.append(H.EarlyStopping(cfg.eval.patience))
        if cfg.run.stop_after_epochs is not None:
            hooks.append(H.StopAfterEpochs(cfg.run.stop_after_epochs))
        hooks.append(H.FinalReport())
        return hooks + H.trackers(cfg.run.loggers, cfg.run.group)

    def _progress_bar(self) -> bool:
        return bool(self.cfg.run.progress and self.info.is_main and sys.stderr.isatty())

    def _batches(self) -> Iterable:
        if not self._progress_bar():
            return self.loaders.train
        from tqdm import tqdm

        desc = f"epoch {self.state.epoch + 1}/{self.state.epochs_total}"
        return tqdm(self.loaders.train, desc=desc, leave=False, dynamic_ncols=True)

    def _data_lines(self, train_report: DataReport, val_report: DataReport | None) -> list[str]:
        """The data checks' summary: logged at set-up, and in the run's report.html."""
        lines = [f"training data {self.cfg.data.train}:"]
        lines += [f"  {line}" for line in train_report.summary_lines()]
        if val_report is not None:
            lines.append(f"validation data {self.cfg.data.val}:")
            lines += [f"  {line}" for line in val_report.summary_lines()]
        names = self.train_data.class_names
        lines.append(
            f"{len(self.train_data)} training and {len(self.val_data)} validation images, "
            f"{len(names)} classes: {', '.join(names)}"
        )
        return lines

    # ---- resume -----------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.weights / "last.state.pt"

    def save_state(self) -> None:
        """``last.state.pt``: everything ``--resume`` needs. The weights are a link to this
        epoch's ``last.safetensors`` named after the epoch (``last.state.epoch<N>
        .safetensors``), made before the state is written and the previous one removed
        after: a process killed between writes resumes from a consistent pair."""
        s = self.state
        name = f"last.state.epoch{s.epoch + 1}.safetensors"
        saved = s.last(WEIGHTS_SAVED, s.epoch)  # announced by the Checkpointer
        if saved is not None and self.average is None:  # else it holds the average
            atomic_link(saved.data["path"], self.weights / name)
        else:  # no hook wrote this epoch's weights
            save_model(self.raw_model, self.weights / name)
        state = {
            "format": STATE_FORMAT,
            "epoch": s.epoch,
            "epochs_total": s.epochs_total,
            "epochs_configured": self.cfg.schedule.epochs,
            "schedule_total": self.schedule.total_steps,
            "elapsed": s.elapsed(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(),
            "hooks": {h.name: h.state_dict() for h in self.hooks},
            "model_file": name,
            "stream_batches": getattr(self.loaders.train, "position", None),
            "average": self.average.state_dict() if self.average is not None else None,
        }
        atomic_torch_save(state, self.state_path)
        for old in self.weights.glob("last.state.epoch*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def _read_resume_state(self) -> dict:
        """The saved state, after checking there is something left to train.

        Raises:
            ValueError: the run finished and ``schedule.epochs`` does not extend it.
        """
        state = _upgrade_state(load_training_state(self.state_path))
        configured = int(state.get("epochs_configured", state["epochs_total"]))
        self._extend = self.cfg.schedule.epochs > configured
        if int(state["epoch"]) + 1 >= int(state["epochs_total"]) and not self._extend:
            raise InputError(
                f"--resume: the run in {self.out} already finished (epoch {int(state['epoch']) + 1} "
                f"of {int(state['epochs_total'])}); pass --epochs N with N > {configured} to "
                "train it further, or start a new run"
            )
        return state

    def _resume(self, state: dict) -> None:
        if "model_file" in state:
            self._load_resumed(load_file(self.weights / state["model_file"]))
        elif "model" in state:  # frcnn 0.2 kept the weights inside the state
            self._load_resumed(state["model"])
        else:  # frcnn 0.1.0 kept the weights only in last.safetensors
            self._load_resumed(load_model(self.weights / "last.safetensors").state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.schedule.fit_total(int(state["schedule_total"]))
        s = self.state
        s.epoch = int(state["epoch"])
        s.first_epoch = s.epoch + 1
        s.epochs_total = int(state["epochs_total"])
        s.elapsed_before = float(state["elapsed"])
        if self._extend:  # the schedule now spans the new number of epochs
            s.epochs_total = self.cfg.schedule.epochs
            self.schedule.fit_total(s.epochs_total * self.steps_per_epoch)
            log.info("extending the run to %d epochs", s.epochs_total)
        for hook in self.hooks:
            if hook.name in state["hooks"]:
                hook.load_state_dict(state["hooks"][hook.name])
        set_rng_state(state["rng"])
        if self.average is not None and state.get("average") is not None:
            self.average.load_state_dict(state["average"])
        if state.get("stream_batches") is not None and self.streamed is not None:
            self.loaders.train.seek(int(state["stream_batches"]))  # the stream continues
        self._progress()
        log.info("resumed from %s at epoch %d", self.state_path, s.first_epoch + 1)

    def _load_resumed(self, weights: dict) -> None:
        """The run's weights, after checking they fit today's data.

        Raises:
            ValueError: the run was trained for another number of classes.
        """
        saved = weights.get("roi_heads.predictor.cls_score.weight")
        if saved is not None and saved.shape[0] != self.raw_model.num_classes:
            raise InputError(
                f"--resume: the run in {self.out} was trained for {saved.shape[0]} classes "
                f"(background included), the data now has {self.raw_model.num_classes}; resume "
                "with the run's own data, or start a new run from its weights with --weights"
            )
        self.raw_model.load_state_dict(weights)

    def _train_result(self) -> TrainResult:
        best, s = self.weights / "best.safetensors", self.state
        return TrainResult(
            self.out,
            best if best.exists() else None,
            self.weights / "last.safetensors",
            s.epoch + 1,
            None if s.best_epoch is None else s.best_epoch + 1,
            s.metrics,
            self.data_report,
        )


def validation_options(cfg: TrainConfig) -> InferenceOptions:
    """How a run predicts the images it scores: tiled as it trained, at its threshold and
    detection limit (the model files it writes carry both)."""
    d, e = cfg.data, cfg.eval
    return InferenceOptions(
        conf=e.conf,
        max_det=e.max_dets,
        tile=d.tile,
        overlap=d.overlap,
        batch_size=d.batch_size,
        device=cfg.run.device,
    )


def _check_before_start(cfg: TrainConfig) -> None:
    """What can be wrong without reading any data, checked before a folder is created: the
    model name and options, and that the data paths exist.

    Raises:
        ValueError, TypeError: unknown model name or option. FileNotFoundError: no such data.
    """
    model_config(cfg.model.name, 2, **without_auto(cfg.model.args))
    if cfg.schedule.steps and not is_streamed(cfg):
        raise InputError(
            "schedule.steps sets the length of training from a streamed (hf:) source; for "
            "files and folders give schedule.epochs (or schedule.time_budget)"
        )
    for key, value in (("data.train", cfg.data.train), ("data.val", cfg.data.val)):
        if value and not is_hub_source(value, cfg.data.format) and not Path(value).exists():
            raise FileNotFoundError(f"{key}: dataset not found: {value}")


def _upgrade_state(state: dict) -> dict:
    """A frcnn 0.1.0 ``last.state.pt`` (one flat dictionary) in the hooks layout."""
    if state.get("format") == STATE_FORMAT:
        return state
    best = {"best": state["best_score"], "best_epoch": state["best_epoch"]}
    hooks = {
        "Checkpointer": {"topk": state["topk"], **best},
        "EarlyStopping": {**best, "stale": state["stale"]},
    }
    return {**state, "format": STATE_FORMAT, "hooks": hooks}


def train(cfg: TrainConfig, callbacks: Sequence[H.Hook] = ()) -> TrainResult:
    """Train a detector as configured; the Python twin of ``frcnn train``."""
    return Trainer(cfg, callbacks).fit()
