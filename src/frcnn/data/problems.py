"""Data problems: what was wrong, where, and what was done about it."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

# kind -> (severity, action taken when training, what it means)
KINDS: dict[str, tuple[str, str, str]] = {
    "image_missing": ("error", "image skipped", "image file not found"),
    "image_corrupt": ("error", "image skipped", "image file cannot be decoded"),
    "image_size_mismatch": ("error", "image skipped", "image size differs from the annotation's"),
    "image_extreme_aspect": (
        "error",
        "image skipped",
        "image too long and thin to resize (tile it)",
    ),
    "image_name_fixed": (
        "warning",
        "other file used",
        "named image missing; the file with its stem and another extension used",
    ),
    "unsafe_path": ("error", "image skipped", "file name is absolute or escapes the dataset root"),
    "box_nonfinite": ("error", "box dropped", "NaN or infinite coordinate"),
    "box_degenerate": ("error", "box dropped", "zero or negative width or height"),
    "box_outside": ("warning", "box clipped", "box partly outside the image"),
    "box_fully_outside": ("error", "box dropped", "box entirely outside the image"),
    "box_duplicate": ("warning", "box dropped", "same box and label twice in one image"),
    "unknown_category": ("error", "box dropped", "category id not in the category list"),
    "duplicate_annotation_id": ("error", "kept", "annotation id used more than once"),
    "duplicate_image": ("error", "image skipped", "image listed more than once"),
    "bad_row": ("error", "box dropped", "annotation row cannot be parsed"),
    "yolo_out_of_range": ("warning", "box clipped", "normalised coordinate outside 0..1"),
    "yolo_bad_class": ("error", "box dropped", "class id >= number of names"),
    "aug_dropped": ("info", "box dropped", "box pushed out of the image by augmentation"),
    "tile_dropped": ("info", "box dropped", "box less visible in a tile than required"),
}


@dataclass
class Problem:
    """One problem. ``kind`` is a key of :data:`KINDS`; ``file`` the annotation or image file;
    ``image`` the image's file name; ``annotation`` the box index (or annotation id/row) when
    the problem concerns one box."""

    kind: str
    message: str
    file: str = ""
    image: str = ""
    annotation: str = ""

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]

    @property
    def action(self) -> str:
        return KINDS[self.kind][1]

    def __str__(self) -> str:
        where = ", ".join(
            p
            for p in (
                self.file,
                f"image {self.image}" if self.image and self.image != self.file else "",
                f"annotation {self.annotation}" if self.annotation != "" else "",
            )
            if p
        )
        return f"{self.severity}: {where}: {self.message} [{self.kind}]"


@dataclass
class ProblemLog:
    """Problems in the order they were found."""

    items: list[Problem] = field(default_factory=list)

    def add(
        self, kind: str, message: str, file: str = "", image: str = "", annotation: object = ""
    ) -> None:
        if kind not in KINDS:
            raise KeyError(f"unknown problem kind {kind!r}")
        self.items.append(Problem(kind, message, str(file), str(image), str(annotation)))

    def extend(self, other: ProblemLog) -> None:
        self.items.extend(other.items)

    def counts(self) -> Counter:
        return Counter(p.kind for p in self.items)

    @property
    def num_errors(self) -> int:
        return sum(p.severity == "error" for p in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def to_json(self) -> list[dict]:
        return [{**asdict(p), "severity": p.severity, "action": p.action} for p in self.items]
