"""The hook interface: everything around the training loop is a hook.

The trainer calls, in list order, ``before_train`` once (after a resume restored every
hook's state), ``before_epoch`` and ``after_epoch`` around each epoch, ``after_step`` after
each batch, and ``after_train`` once at the end. Hooks read and steer the run through the
trainer's attributes (see :class:`~frcnn.engine.trainer.Trainer`): ``trainer.result`` is the
epoch's evaluation, ``trainer.request_stop(reason)`` ends the run after this epoch,
``trainer.end_epoch()`` ends the current epoch after this step.

A hook that must survive ``--resume`` returns its state from ``state_dict()`` (plain
containers, numbers, strings and tensors) and takes it back in ``load_state_dict()``; the
trainer saves it with the weights under the hook's ``name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..trainer import Trainer


class Hook:
    """Base class of trainer hooks and user callbacks; every method is optional."""

    @property
    def name(self) -> str:
        """The key of this hook's state in the resume file (the class name by default)."""
        return type(self).__name__

    def before_train(self, trainer: Trainer) -> None:
        """Once, before the first epoch of this invocation."""

    def before_epoch(self, trainer: Trainer) -> None:
        """Before epoch ``trainer.epoch`` (counted from 0)."""

    def after_step(self, trainer: Trainer) -> None:
        """After each batch: ``trainer.step_losses`` holds its losses, ``trainer.global_step``
        counts optimiser steps."""

    def after_epoch(self, trainer: Trainer) -> None:
        """After the epoch's training (``trainer.stats``) and, when it ran, evaluation."""

    def after_train(self, trainer: Trainer) -> None:
        """Once, after the last epoch (also after an early stop)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


# What users subclass: ``frcnn.train(cfg, callbacks=[MyCallback()])``.
Callback = Hook
