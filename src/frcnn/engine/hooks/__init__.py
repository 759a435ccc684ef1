"""Trainer hooks: every concern around the training loop, each with its own state."""

from .advice import CpuRecipeAdvice
from .base import USER_PRIORITY, Callback, Hook, ordered_hooks
from .budget import StopAfterEpochs, TimeBudget
from .checkpoint import Checkpointer, TopK
from .early_stop import EarlyStopping
from .evaluation import EvalSchedule
from .report import FinalReport
from .schedule import ProgressiveResize, size_for_epoch
from .threads import CpuThreads
from .trackers import MLflowTracker, Tracker, WandbTracker, trackers
from .writers import EpochLog, ProgressLog, ResultsCSV, TensorBoard

__all__ = [
    "Callback",
    "Checkpointer",
    "CpuRecipeAdvice",
    "CpuThreads",
    "EarlyStopping",
    "EpochLog",
    "EvalSchedule",
    "FinalReport",
    "Hook",
    "ProgressLog",
    "ProgressiveResize",
    "ResultsCSV",
    "StopAfterEpochs",
    "TensorBoard",
    "TimeBudget",
    "TopK",
    "Tracker",
    "MLflowTracker",
    "WandbTracker",
    "trackers",
    "USER_PRIORITY",
    "ordered_hooks",
    "size_for_epoch",
]
