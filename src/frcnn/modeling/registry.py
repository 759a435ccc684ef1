"""Name -> builder registries: how backbones, necks and named models are found by name.

Adding a backbone is one module that calls ``BACKBONES.register(...)`` (imported by
``frcnn.modeling.backbones``); :func:`frcnn.build_model` then finds it by name.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ..errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of builders with did-you-mean errors for unknown names.

    Args:
        kind: what is registered ("backbone", "neck", "model"), used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None) -> Callable[[T], T] | T:
        """``REG.register("name", obj)``, or as a decorator ``@REG.register("name")``."""

        def add(obj: T) -> T:
            if name in self._items:
                raise InputError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add if item is None else add(item)

    def unregister(self, name: str) -> T:
        """Remove and return ``name`` (e.g. to register a changed version in a notebook)."""
        return self._items.pop(name)

    def get(self, name: str) -> T:
        """The item registered as ``name``.

        Raises:
            ValueError: unknown name, with the known names and the closest match.
        """
        if name not in self._items:
            hint = difflib.get_close_matches(name, self._items, n=1)
            extra = f" Did you mean {hint[0]!r}?" if hint else ""
            raise InputError(
                f"unknown {self.kind} {name!r}; choose one of {sorted(self._items)}.{extra}"
            )
        return self._items[name]

    __getitem__ = get

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())


# Named detector configurations: name -> ModelConfig overrides (at least "backbone" and
# "neck"). Backbone modules register the models built on them next to the backbone.
MODELS: Registry[dict] = Registry("model")
