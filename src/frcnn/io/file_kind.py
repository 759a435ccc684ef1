"""What a weights file is, told from its first bytes (never from an exception type)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

# safetensors: an 8-byte little-endian header length, then a JSON header.
# torch.save: a zip archive (PK\x03\x04) since torch 1.6, a raw pickle (\x80) before.
ZIP_MAGIC = b"PK\x03\x04"
PICKLE_MAGIC = b"\x80"
# safetensors refuses headers above 100 MB; a longer "length" is not a safetensors file.
MAX_HEADER = 100_000_000


def file_kind(path: str | os.PathLike) -> str:
    """``safetensors``, ``torch`` (a ``torch.save`` file), ``empty``, ``missing``,
    ``truncated`` (a safetensors header longer than the file) or ``unknown``."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
    if not head:
        return "empty"
    # A safetensors file: an 8-byte little-endian header length, then the JSON header. Tested
    # first: the length's first byte may be 0x80, the first byte of a pickle.
    if len(head) == 9 and head[8:9] == b"{":
        (header_len,) = struct.unpack("<Q", head[:8])
        if header_len < MAX_HEADER:
            return "safetensors" if 8 + header_len <= size else "truncated"
    if head.startswith(ZIP_MAGIC) or head.startswith(PICKLE_MAGIC):
        return "torch"
    return "unknown"


def describe_kind(path: str | os.PathLike, kind: str) -> str:
    """A sentence saying what ``path`` is and what to do, for a non-frcnn file."""
    return {
        "missing": f"{path} does not exist",
        "empty": f"{path} is empty (0 bytes): the file was not written completely",
        "truncated": f"{path} is truncated (its header says it is longer): copy it again",
        "torch": (
            f"{path} is a PyTorch checkpoint (torch.save), not an frcnn model file; convert a "
            "torchvision Faster R-CNN with `frcnn convert-weights IN OUT`, or pass it to "
            "`frcnn train --weights` to start from it"
        ),
        "unknown": f"{path} is neither a safetensors nor a PyTorch file",
    }.get(kind, f"{path} is not an frcnn model file")
