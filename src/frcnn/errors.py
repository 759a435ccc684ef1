"""frcnn's error types: errors about what the user gave, as opposed to bugs in frcnn.

Every error frcnn raises about the user's data, options, files or environment is a
:class:`FrcnnError` (each also a subclass of the built-in type it used to be, so ``except
ValueError`` still catches :class:`InputError`). The command line prints those as one line
with exit status 2; anything else is a bug in frcnn and is reported as one, with its
traceback written to a file (:mod:`frcnn.cli`).
"""

from __future__ import annotations


class FrcnnError(Exception):
    """Something the user gave cannot be used; the message says what and what to do."""


class InputError(FrcnnError, ValueError):
    """A value, file, dataset or model file that cannot be used."""


class InputTypeError(FrcnnError, TypeError):
    """A value of the wrong type (the Python API's arguments, a config value)."""


class UnknownKeyError(FrcnnError, KeyError):
    """A configuration key or name frcnn does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnreadableImageError(FrcnnError, OSError):
    """An image file that cannot be decoded (damaged, truncated, not an image)."""


class MissingDependencyError(FrcnnError, ImportError):
    """An optional package is not installed; the message names the extra to install."""


class SetupError(FrcnnError, RuntimeError):
    """The environment cannot do what was asked (a download, a search with no result)."""


def require(module: str, extra: str, what: str) -> object:
    """``module`` imported, or an error naming the extra that installs it.

    Raises:
        MissingDependencyError: ``module`` is not installed (``what`` needs it).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{what} needs {module.split('.')[0]}, which is not installed: "
            f"pip install 'frcnn[{extra}]'"
        ) from err
