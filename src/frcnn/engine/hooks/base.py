"""The hook interface: everything around the training loop is a hook.

The trainer calls, in hook order, ``before_train`` once (after a resume restored every
hook's state), ``before_epoch`` and ``after_epoch`` around each epoch, ``after_step`` after
each batch, and ``after_train`` once at the end. Each receives the run's
:class:`~frcnn.engine.state.TrainState`: hooks read it, announce what they did as events
(``state.emit``) and steer the run with ``state.request_stop(reason)`` (end after this
epoch), ``state.end_epoch()`` (end this epoch after this step) and ``state.fit_epochs(n)``.
A hook that acts on the model reaches the trainer as ``state.trainer``.

Order is declared: each hook has a ``priority`` (lower runs first; built-in hooks 10-90,
user callbacks 100 unless they say otherwise) and may name hooks it must run after
(``runs_after``); :func:`ordered_hooks` sorts by priority and refuses an order that breaks
a declared dependency.

A hook that must survive ``--resume`` returns its state from ``state_dict()`` (plain
containers, numbers, strings and tensors) and takes it back in ``load_state_dict()``; the
trainer saves it with the weights under the hook's ``name``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import InputError

if TYPE_CHECKING:
    from ..state import TrainState

# Where user callbacks run by default: after every built-in hook.
USER_PRIORITY = 100


class Hook:
    """Base class of trainer hooks and user callbacks; every method is optional."""

    priority: int = USER_PRIORITY
    # Names (``name``) of hooks that, when present, must run before this one.
    runs_after: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The key of this hook's state in the resume file (the class name by default)."""
        return type(self).__name__

    def before_train(self, state: TrainState) -> None:
        """Once, before the first epoch of this invocation."""

    def before_epoch(self, state: TrainState) -> None:
        """Before epoch ``state.epoch`` (counted from 0)."""

    def after_step(self, state: TrainState) -> None:
        """After each batch: ``state.step_losses`` holds its losses, ``state.global_step``
        counts optimiser steps."""

    def after_epoch(self, state: TrainState) -> None:
        """After the epoch's training (``state.stats``) and, when it ran, evaluation
        (``state.result``, for hooks that run after ``EvalSchedule``)."""

    def after_train(self, state: TrainState) -> None:
        """Once, after the last epoch (also after an early stop)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def ordered_hooks(hooks: Sequence[Hook]) -> list[Hook]:
    """``hooks`` by priority (stable: equal priorities keep their order).

    Raises:
        InputError: a hook that must run after another would run before it, naming both
            and their priorities.
    """
    ordered = sorted(hooks, key=lambda h: h.priority)
    position = {h.name: i for i, h in enumerate(ordered)}
    for i, hook in enumerate(ordered):
        for before in hook.runs_after:
            if position.get(before, -1) > i:
                other = ordered[position[before]]
                raise InputError(
                    f"hook {hook.name} (priority {hook.priority}) must run after {before} "
                    f"(priority {other.priority}): give {hook.name} a priority above "
                    f"{other.priority}"
                )
    return ordered


# What users subclass: ``frcnn.train(cfg, callbacks=[MyCallback()])``.
Callback = Hook
