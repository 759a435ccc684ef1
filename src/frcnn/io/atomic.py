"""One atomic file write for every file frcnn must never leave half-written."""

from __future__ import annotations

import csv
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

# Temporary files are ``.<name>.<random><TMP_SUFFIX>`` beside their target.
TMP_SUFFIX = ".tmp"


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder, then rename it over
    ``path``: a process killed mid-write leaves the previous file intact, never a truncated
    one, and the temporary file is removed on any error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # as a plain open() would (mkstemp's is 0600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_orphans(folders: list[Path]) -> int:
    """Delete the temporary files :func:`atomic_write` leaves when its process is killed
    mid-write (``.<name>.<random>.tmp``) in ``folders``; how many were removed."""
    removed = 0
    for folder in folders:
        for tmp in Path(folder).glob(f".*{TMP_SUFFIX}"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """``path.write_text(text)``, atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def csv_row(row: dict) -> dict:
    """A row as every frcnn CSV writes it: an undefined value (None, NaN, infinity) is an
    empty cell."""
    return {
        k: "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
        for k, v in row.items()
    }


def atomic_write_csv(path: str | os.PathLike, fields: list[str], rows: Iterable[dict]) -> Path:
    """A CSV file with a ``fields`` header and one line per row mapping (undefined values
    empty, :func:`csv_row`), atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(csv_row(r) for r in rows)

    return atomic_write(path, write)


def atomic_link(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Make ``path`` the same file as ``source`` (a hard link: no second copy on disk),
    replacing ``path`` atomically; a copy where the file system has no hard links. Later
    atomic writes to ``source`` replace its name with a new file, so ``path`` keeps this
    content."""
    source, path = Path(source), Path(path)
    if source.resolve() == path.resolve():
        return path

    def link(tmp: str) -> None:
        os.unlink(tmp)
        try:
            os.link(source, tmp)
        except OSError:  # no hard links here (some network and FAT file systems)
            shutil.copyfile(source, tmp)

    return atomic_write(path, link)
