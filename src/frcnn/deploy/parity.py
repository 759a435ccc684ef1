"""Does an exported model detect what the PyTorch model detects? Detections matched one to
one within their class; boxes, scores and counts compared."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

BOX_TOLERANCE = 1e-2  # pixels
SCORE_TOLERANCE = 1e-4


@dataclass
class ParityCase:
    """One image's comparison."""

    name: str
    size: tuple[int, int]
    detections: int
    box_error: float
    score_error: float
    problem: str | None = None

    def line(self) -> str:
        head = f"{self.name} {self.size[0]}x{self.size[1]}: {self.detections} detections"
        if self.problem:
            return f"{head}: {self.problem}"
        if self.detections == 0:
            return f"{head} in either (the empty case)"
        return f"{head}, boxes within {self.box_error:.1e} px, scores within {self.score_error:.1e}"


def compare(name: str, image: Tensor, reference: dict, exported: dict) -> ParityCase:
    """Match each reference detection (by score) to the nearest unused exported one of its
    class and measure the largest box and score differences."""
    size = (int(image.shape[-2]), int(image.shape[-1]))
    n, m = len(reference["scores"]), len(exported["scores"])
    if n != m:
        return ParityCase(name, size, n, 0.0, 0.0, f"{m} detections exported vs {n} in PyTorch")
    if n == 0:
        return ParityCase(name, size, 0, 0.0, 0.0)
    a, b = reference["boxes"].float(), exported["boxes"].float()
    distance = (a[:, None, :] - b[None, :, :]).abs().amax(-1)
    distance[reference["labels"][:, None] != exported["labels"][None, :]] = float("inf")
    pairs = []
    for i in torch.argsort(reference["scores"], descending=True).tolist():  # once per check
        j = int(torch.argmin(distance[i]))
        if not torch.isfinite(distance[i, j]):
            return ParityCase(name, size, n, 0.0, 0.0, f"detection {i} has no match of its class")
        pairs.append((i, j, float(distance[i, j])))
        distance[:, j] = float("inf")
    box_error = max(d for _, _, d in pairs)
    score_error = max(
        float((reference["scores"][i] - exported["scores"][j]).abs()) for i, j, _ in pairs
    )
    problem = None
    if box_error > BOX_TOLERANCE or score_error > SCORE_TOLERANCE:
        problem = f"boxes differ by {box_error:.2e} px, scores by {score_error:.2e}"
    return ParityCase(name, size, n, box_error, score_error, problem)


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
) -> list[ParityCase]:
    """Every image through both models, compared (see :func:`compare`)."""
    cases = []
    with torch.no_grad():
        for name, image in images:
            cases.append(compare(name, image, reference([image])[0], exported([image])[0]))
    return cases
