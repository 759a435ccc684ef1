"""Does an exported model detect what the PyTorch model detects? Detections matched one to
one within their class; boxes, scores and counts compared."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..words import count

BOX_TOLERANCE = 1e-2  # pixels
SCORE_TOLERANCE = 1e-4
MATCH_GATE = 1.0  # pixels: detections further apart are not the same one (reduced precision)


@dataclass
class ParityCase:
    """One image's comparison."""

    name: str
    size: tuple[int, int]
    detections: int
    box_error: float
    score_error: float
    problem: str | None = None
    note: str | None = None  # counts that differ in a reduced-precision export
    matched: int = 0  # PyTorch's detections with an exported partner

    def line(self) -> str:
        head = f"{self.name} {self.size[0]}x{self.size[1]}: {count(self.detections, 'detection')}"
        if self.problem:
            return f"{head}: {self.problem}"
        if self.detections == 0 and not self.note:
            return f"{head} in either (the empty case)"
        line = f"{head}, boxes within {self.box_error:.1e} px, scores within {self.score_error:.1e}"
        return f"{line} ({self.note})" if self.note else line


def _matched(reference: dict, exported: dict) -> list[tuple[int, int, float]]:
    """Each reference detection (by score) paired with the nearest unused exported one of
    its class: ``(i, j, largest box coordinate difference)``; unmatched ones left out."""
    a, b = reference["boxes"].float(), exported["boxes"].float()
    distance = (a[:, None, :] - b[None, :, :]).abs().amax(-1)
    distance[reference["labels"][:, None] != exported["labels"][None, :]] = float("inf")
    pairs = []
    for i in torch.argsort(reference["scores"], descending=True).tolist():  # once per check
        j = int(torch.argmin(distance[i])) if distance.shape[1] else 0
        if distance.shape[1] and torch.isfinite(distance[i, j]):
            pairs.append((i, j, float(distance[i, j])))
            distance[:, j] = float("inf")
    return pairs


def compare(
    name: str, image: Tensor, reference: dict, exported: dict, strict: bool = True
) -> ParityCase:
    """Match the detections (see :func:`_matched`) and measure the largest box and score
    differences. ``strict``: any count difference, unmatched detection or difference over
    the tolerances is a problem; otherwise (a reduced-precision export) they are measured
    and reported only."""
    size = (int(image.shape[-2]), int(image.shape[-1]))
    n, m = len(reference["scores"]), len(exported["scores"])
    pairs = _matched(reference, exported) if n and m else []
    if not strict:  # a reduced-precision export: a partner more than a pixel away is none
        pairs = [p for p in pairs if p[2] <= MATCH_GATE]
    box_error = max((d for _, _, d in pairs), default=0.0)
    score_error = max(
        (float((reference["scores"][i] - exported["scores"][j]).abs()) for i, j, _ in pairs),
        default=0.0,
    )
    case = ParityCase(name, size, n, box_error, score_error, matched=len(pairs))
    if n != m or len(pairs) < n:
        case.note = f"{count(m, 'detection')} exported vs {n} in PyTorch, {len(pairs)} matched"
    if strict and case.note:
        case.problem = case.note
    elif strict and (box_error > BOX_TOLERANCE or score_error > SCORE_TOLERANCE):
        case.problem = f"boxes differ by {box_error:.2e} px, scores by {score_error:.2e}"
    return case


def parity_images(size: tuple[int, int], dynamic: bool) -> list[tuple[str, Tensor]]:
    """The images a check runs: textured noise at the input size and (dynamic) at another,
    portrait, size; and blank images, one of which usually yields no detection."""
    g = torch.Generator().manual_seed(1)
    h, w = size
    images = [("noise", torch.rand(3, h, w, generator=g))]
    if dynamic:
        images.append(
            ("other size", torch.rand(3, max(32, h * 3 // 2), max(32, w * 2 // 3), generator=g))
        )
    images += [(f"blank {v}", torch.full((3, h, w), v)) for v in (0.0, 0.5, 1.0)]
    return images


def check_parity(
    reference: Callable[[Sequence[Tensor]], list[dict]],
    exported: Callable[[Sequence[Tensor]], list[dict]],
    images: Sequence[tuple[str, Tensor]],
    strict: bool = True,
) -> list[ParityCase]:
    """Every image through both models, compared (see :func:`compare`)."""
    from ..inference.predict import detect

    cases = []
    with torch.no_grad():
        for name, image in images:
            try:
                found = detect(reference, [image])[0], detect(exported, [image])[0]
            except Exception as err:  # ONNX Runtime and TorchScript raise their own types
                size = (int(image.shape[-2]), int(image.shape[-1]))
                first = str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)
                cases.append(ParityCase(name, size, 0, 0.0, 0.0, f"failed to run: {first}"))
                continue
            cases.append(compare(name, image, *found, strict=strict))
    return cases
