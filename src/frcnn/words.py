"""Words for numbers in messages, the same everywhere: "1 detection", "3 detections"."""

from __future__ import annotations

IRREGULAR = {"was": "were", "is": "are", "box": "boxes", "image_path": "image_paths"}


def plural(noun: str, n: int) -> str:
    """``noun`` for ``n`` of it: "image" for 1, "images" otherwise."""
    if n == 1:
        return noun
    return IRREGULAR.get(noun, noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s"))


def count(n: int, noun: str) -> str:
    """``n`` and ``noun`` agreeing: "1 detection", "0 detections", "2 boxes"."""
    return f"{n} {plural(noun, n)}"
