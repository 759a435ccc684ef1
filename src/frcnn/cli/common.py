"""What several commands share: dataset arguments, reading splits, printing problems."""

from __future__ import annotations

import argparse
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..inference.options import InferenceOptions

FORMATS = ["coco", "yolo", "voc", "csv", "hf"]


def add_source_args(p: argparse.ArgumentParser) -> None:
    """The positional dataset and the options that say how to read it."""
    p.add_argument(
        "data",
        help="dataset: COCO JSON/folder, YOLO folder/data.yaml, VOC folder, CSV, hf:NAME[:SPLIT]",
    )
    p.add_argument("--format", choices=FORMATS, help="force the format")
    p.add_argument("--split", help="only this split (default: all)")
    p.add_argument("--images", help="folder the image file names are relative to (COCO, CSV)")
    p.add_argument("--no-exif", action="store_true", help="ignore EXIF orientation")


def add_tile_args(p: argparse.ArgumentParser, what: str = "predict", max_det: bool = True) -> None:
    """``--tile``, ``--overlap`` and (``max_det``) ``--max-det``, the same for every command
    that works on tiles."""
    from ..defaults import TILE_OVERLAP

    p.add_argument(
        "--tile",
        type=int,
        help=f"{what} large images in overlapping tiles of this size (the size of "
        "train --tile SIZE)",
    )
    p.add_argument(
        "--overlap",
        type=float,
        default=TILE_OVERLAP,
        help=f"tile overlap fraction (default {TILE_OVERLAP})",
    )
    if not max_det:
        return
    p.add_argument(
        "--max-det",
        type=int,
        help="most detections kept per image (per tile when tiled); default: the model's "
        "(100). Raise it for scenes with more objects",
    )


def read_splits(args: argparse.Namespace) -> dict:
    """Every split of ``args.data`` (or only ``--split``), read but not yet checked."""
    from ..data.sources import distinct_splits, list_splits, read_dataset

    splits = [args.split] if getattr(args, "split", None) else list_splits(args.data, args.format)
    found = {
        s: read_dataset(args.data, args.format, s, images=args.images, exif=not args.no_exif)
        for s in splits
    }
    return distinct_splits(found, str(args.data))  # each image in one split only


def print_problems(problems, limit: int) -> None:
    """At most ``limit`` problems of each kind, then how many more."""
    shown: Counter = Counter()
    for p in problems:
        shown[p.kind] += 1
        if shown[p.kind] <= limit:
            print(f"  {p}")
    for kind, n in sorted(shown.items()):
        if n > limit:
            print(f"  ... and {n - limit} more [{kind}]")


def add_precision_arg(p: argparse.ArgumentParser) -> None:
    """``--precision``: what a frcnn model file computes in (predict and eval)."""
    from ..defaults import PRECISIONS

    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32 (exact, default) or bf16: the heavy layers in bfloat16, about twice as "
        "fast on a CPU with AVX512-BF16/AMX, detections change slightly (frcnn benchmark "
        "--formats pytorch,pytorch-bf16 --data DATA measures by how much)",
    )


def add_merge_args(p: argparse.ArgumentParser) -> None:
    """Several ``--weights`` (an ensemble), test-time augmentation, and how each image's
    detections are merged; the same for predict, eval and ensemble."""
    from ..defaults import ENSEMBLE_IOU, ENSEMBLE_METHODS, TTA_SCALES

    p.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: also predict a left-right flipped copy and each "
        f"--tta-scales size, fused like an ensemble (default scales {' '.join(map(str, TTA_SCALES))})",
    )
    p.add_argument(
        "--tta-scales", type=float, nargs="+", help="input sizes relative to the model's"
    )
    p.add_argument(
        "--method",
        choices=ENSEMBLE_METHODS,
        default="wbf",
        help="how several models (or TTA views) are fused (default wbf). A single model "
        "without --tta is never fused: WBF of one model does worse than its own NMS",
    )
    p.add_argument(
        "--iou",
        type=float,
        default=ENSEMBLE_IOU,
        help=f"fusion IoU threshold (default {ENSEMBLE_IOU})",
    )
    p.add_argument(
        "--skip-box", type=float, default=0.0, help="drop boxes below this score before fusing"
    )
    p.add_argument(
        "--model-weights", type=float, nargs="+", help="one weight per --weights model (default 1)"
    )
    p.add_argument(
        "--merge",
        choices=["none", "mean"],
        help="mean: average each NMS cluster of a model (the kept box and those it "
        "suppressed, score-weighted) into one box (default: the model's own setting)",
    )


def add_run_args(p: argparse.ArgumentParser, threshold: str = "score threshold") -> None:
    """``--conf``, ``--batch-size`` and ``--device``: how every command that runs a model
    runs it."""
    from ..defaults import BATCH_SIZE, CONF

    p.add_argument(
        "--conf",
        type=float,
        help=f"{threshold} (default: the one stored in the model file, the threshold its "
        f"training run was scored at; {CONF} for a file without one)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        help=f"images per forward pass (tiles per pass with --tile; default {BATCH_SIZE}); "
        "only images of the same input size share a pass, so results never depend on it",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default auto)")


def inference_options(args: argparse.Namespace) -> InferenceOptions:
    """The :class:`~frcnn.inference.options.InferenceOptions` a command's flags set (the
    flags a command lacks keep their defaults)."""
    from ..inference.options import InferenceOptions, MergeOptions

    def given(name: str, default: object = None) -> object:
        return getattr(args, name, default)

    values: dict = {
        "conf": given("conf"),
        "max_det": given("max_det"),
        "tile": given("tile"),
        "batch_size": given("batch_size"),
        "device": given("device", "auto"),
        "precision": given("precision", "fp32"),
        "merge": given("merge"),
        "calibrated": bool(given("calibrated", False)),
    }
    if given("overlap") is not None:
        values["overlap"] = args.overlap
    if given("method") is not None and hasattr(args, "tta"):
        values["tta"] = (args.tta_scales or True) if args.tta else ()
        values["ensemble"] = MergeOptions(args.method, args.iou, args.skip_box, args.model_weights)
    return InferenceOptions(**{k: v for k, v in values.items() if v is not None})


MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".onnx", ".torchscript", ".xml")


def split_weights(weights: list[str], sources: list[str]) -> tuple[list[str], list[str]]:
    """``--weights A B img/`` hands the sources to ``--weights`` too: everything after the
    last model file (by suffix, or a file that reads as one) goes back to the sources."""
    from pathlib import Path

    from ..io.file_kind import file_kind
    from ..modeling.catalog import is_coco

    def is_model(entry: str) -> bool:
        if is_coco(entry):
            return True
        return Path(entry).suffix.lower() in MODEL_SUFFIXES or file_kind(entry) in (
            "safetensors",
            "torch",
        )

    cut = 1
    while cut < len(weights) and is_model(weights[cut]):
        cut += 1
    return weights[:cut], weights[cut:] + sources
