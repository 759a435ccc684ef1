"""The ``frcnn`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.problems import KINDS

log = logging.getLogger("frcnn")


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..api import predict
    from ..demo import run_demo_training

    out = Path(args.out)
    result = run_demo_training(out, args.minutes, args.n_train, args.n_val, seed=args.seed)
    weights = result.best or result.last
    held_out = sorted((out / "data" / "val" / "images").glob("*.png"))[:8]
    predictions = predict(
        weights, [str(p) for p in held_out], conf=0.5, out=out / "predictions", save_images=True
    )
    m = result.metrics
    print(
        f"held-out images: mAP50 {m['AP50']:.3f}  mAP50-95 {m['AP']:.3f}  F1 {m['F1_at_conf']:.3f} (score >= {m['conf']})"
    )
    print(f"data:        {out / 'data'}")
    print(f"run folder:  {result.out} (results.csv, plots, metrics.json)")
    print(f"weights:     {weights}")
    print(
        f"predictions: {out / 'predictions'} ({sum(len(p.boxes) for p in predictions)} boxes on {len(predictions)} held-out images, drawn in images/)"
    )
    print(f"next: frcnn predict --weights {weights} YOUR_IMAGES --save-images --out runs/predict")
    return 0


def _cmd_convert_weights(args: argparse.Namespace) -> int:
    from ..io.checkpoint import load_state_dict_file
    from ..io.convert import model_from_torchvision
    from ..io.model_file import save_model

    model = model_from_torchvision(load_state_dict_file(args.src))
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    path = save_model(model, args.dst, class_names=names)
    print(
        f"wrote {path}: {model.config['name']} with {model.num_classes} classes "
        f"(background included)"
    )
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from ..modeling.builder import MODELS

    for name, spec in MODELS.items():
        print(f"{name:<16} backbone {spec['backbone']}")
    return 0


def _read_splits(args: argparse.Namespace) -> dict:
    from ..data.sources import list_splits, read_dataset

    splits = [args.split] if getattr(args, "split", None) else list_splits(args.data, args.format)
    return {
        s: read_dataset(args.data, args.format, s, images=args.images, exif=not args.no_exif)
        for s in splits
    }


def _print_problems(problems, limit: int) -> None:
    shown: Counter = Counter()
    for p in problems:
        shown[p.kind] += 1
        if shown[p.kind] <= limit:
            print(f"  {p}")
    for kind, n in sorted(shown.items()):
        if n > limit:
            print(f"  ... and {n - limit} more [{kind}]")


def _cmd_data_check(args: argparse.Namespace) -> int:
    from ..data.check import check_dataset

    splits = _read_splits(args)
    results = {}
    for name, ds in splits.items():
        _, report = check_dataset(
            ds, images="header" if args.fast else "full", exif=not args.no_exif
        )
        results[name] = (ds, report)
    errors = sum(r.num_errors for _, r in results.values())
    if args.json:
        payload = {
            "source": str(args.data),
            "splits": {
                name: {"format": ds.format, "class_names": ds.class_names, **r.to_json()}
                for name, (ds, r) in results.items()
            },
            "errors": errors,
        }
        print(json.dumps(payload, indent=2))
        return 1 if errors else 0
    for name, (ds, report) in results.items():
        print(f"{ds.source} [{ds.format}, split {name}]: {len(ds.class_names)} classes")
        if len(report.problems):
            print("problems:")
            _print_problems(report.problems, args.max_lines)
        print("summary:")
        for line in report.summary_lines():
            print(f"  {line}")
        per_class = ", ".join(f"{c} {report.instances.get(c, 0)}" for c in ds.class_names)
        print(f"  instances per class: {per_class}")
        sizes = report.sizes
        print(
            f"  box sizes (COCO areas): small {sizes.get('small', 0)}, "
            f"medium {sizes.get('medium', 0)}, large {sizes.get('large', 0)}"
        )
        counts = report.problems.counts()
        kinds = ", ".join(f"{k} {n} ({KINDS[k][0]})" for k, n in sorted(counts.items()))
        print(f"  problems by kind: {kinds or 'none'}")
    print(f"{errors} errors" if errors else "no errors")
    return 1 if errors else 0


def _cmd_data_convert(args: argparse.Namespace) -> int:
    from ..data.write import write_dataset

    reports = write_dataset(_read_splits(args), args.out, args.to)
    for name, report in reports.items():
        print(f"split {name}:")
        for line in report.summary_lines():
            print(f"  {line}")
    print(f"wrote {args.to} dataset to {args.out}")
    return 0


def _cmd_data_synth(args: argparse.Namespace) -> int:
    from ..data.synth import write_synth

    path = write_synth(args.out, args.n, args.size, args.grayscale, args.seed)
    print(f"wrote {args.n} images and {path}")
    return 0


def _cmd_anchors(args: argparse.Namespace) -> int:
    import yaml

    from ..data.anchor_fit import fit_anchors
    from ..data.check import check_dataset

    ds = next(iter(_read_splits(args).values()))
    ds, _ = check_dataset(ds, images="header", exif=not args.no_exif)
    fixed = (args.fixed_size, args.fixed_size) if args.fixed_size else None
    fit = fit_anchors(ds, args.k, args.min_size, args.max_size, fixed, seed=args.seed)
    print(
        f"{fit.num_boxes} boxes after resizing (min_size {args.min_size}, max_size {args.max_size}"
        f"{', fixed ' + str(args.fixed_size) if fixed else ''}); {len(fit.clusters)} clusters (w x h):"
    )
    for w, h in fit.clusters:
        print(f"  {w:7.1f} x {h:7.1f}   size {np.sqrt(w * h):7.1f}   h/w {h / w:5.2f}")
    print("mean best-anchor IoU of the boxes:")
    print(f"  default anchors         {fit.iou_default:.3f}")
    print(f"  the {len(fit.clusters)} clusters          {fit.iou_clusters:.3f}")
    print(f"  fitted anchors (snippet) {fit.iou_fitted:.3f}")
    text = yaml.safe_dump(fit.snippet(), default_flow_style=None, sort_keys=False)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}:")
    print(text.rstrip())
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..engine.trainer import train

    config = args.config
    if args.resume and config is None and args.out and (Path(args.out) / "config.yaml").exists():
        config = Path(args.out) / "config.yaml"  # resume the run as it was configured
    values = {
        "data.train": args.data,
        "data.val": args.val,
        "data.val_split": args.val_split,
        "model.name": args.model,
        "model.weights": args.weights,
        "schedule.epochs": args.epochs,
        "data.batch_size": args.batch_size,
        "data.img_size": args.img_size,
        "run.out": args.out,
        "run.resume": True if args.resume else None,
        "schedule.time_budget": args.time_budget,
        "data.tile": args.tile,
        "data.overlap": args.overlap,
    }
    result = train(load_config(config, args.overrides, **values))
    print(f"run folder: {result.out}")
    print(
        f"best weights: {result.best} (epoch {result.best_epoch})"
        if result.best
        else f"last weights: {result.last}"
    )
    if result.metrics:
        m = result.metrics
        print(
            f"validation: mAP {m['AP']:.4f}  mAP50 {m['AP50']:.4f}  F1 {m['F1_at_conf']:.4f}  score {m['score']:.4f}"
        )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ..api import evaluate

    result = evaluate(
        args.weights,
        args.data,
        args.split,
        args.out,
        args.conf,
        args.batch_size,
        args.predictions,
        args.format,
        args.device,
    )
    print(result.coco_summary.rstrip())
    print(result.table())
    print(
        f"F1 {result.f1:.4f} at the best score threshold {result.best_threshold:.3f} "
        f"(P {result.precision:.4f}, R {result.recall:.4f}); at conf {result.conf}: "
        f"P {result.precision_at_conf:.4f} R {result.recall_at_conf:.4f} F1 {result.f1_at_conf:.4f}; "
        f"score {result.score:.4f}"
    )
    if args.out:
        print(f"wrote {Path(args.out) / 'metrics.json'}, per_class.csv and plots")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from ..api import predict

    results = predict(
        args.weights,
        args.sources,
        args.conf,
        args.out,
        args.save_images,
        args.format,
        args.tile,
        args.overlap,
        args.batch_size,
        args.device,
    )
    for p in results:
        print(f"{p.path}: {len(p.boxes)} detections")
    if args.out:
        print(f"wrote {args.format} predictions to {args.out}")
    return 0


def _add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "data",
        help="dataset: COCO JSON/folder, YOLO folder/data.yaml, VOC folder, CSV, hf:NAME[:SPLIT]",
    )
    p.add_argument(
        "--format", choices=["coco", "yolo", "voc", "csv", "hf"], help="force the format"
    )
    p.add_argument("--split", help="only this split (default: all)")
    p.add_argument("--images", help="folder the image file names are relative to (COCO, CSV)")
    p.add_argument("--no-exif", action="store_true", help="ignore EXIF orientation")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frcnn", description=__doc__)
    parser.add_argument("-q", "--quiet", action="store_true", help="only print results")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="generate data, train for a few minutes, evaluate and predict")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--minutes", type=float, default=5.0, help="training time budget (default 5)")
    p.add_argument(
        "--n-train", type=int, default=800, help="generated training images (default 800)"
    )
    p.add_argument("--n-val", type=int, default=100, help="generated held-out images (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "convert-weights", help="convert a torchvision Faster R-CNN state dict to an frcnn model"
    )
    p.add_argument("src", help="torchvision .pth state dict (loaded with weights_only=True)")
    p.add_argument("dst", help="output .safetensors model file")
    p.add_argument("--class-names", help="comma-separated names of classes 1..K-1")
    p.set_defaults(func=_cmd_convert_weights)

    data = sub.add_parser("data", help="dataset tools: check, convert, synth")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("check", help="report every problem in a dataset")
    _add_source_args(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--fast", action="store_true", help="read image headers only, do not decode")
    p.add_argument("--max-lines", type=int, default=20, help="problems shown per kind (default 20)")
    p.set_defaults(func=_cmd_data_check)
    p = data_sub.add_parser("convert", help="convert a dataset to another format")
    _add_source_args(p)
    p.add_argument("--to", required=True, choices=["coco", "yolo", "voc", "csv"])
    p.add_argument("out", help="output folder")
    p.set_defaults(func=_cmd_data_convert)
    p = data_sub.add_parser("synth", help="write the built-in synthetic dataset (COCO)")
    p.add_argument("out", help="output folder")
    p.add_argument("--n", type=int, default=200, help="number of images (default 200)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--grayscale", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_data_synth)

    p = sub.add_parser(
        "anchors", help="fit anchors to a dataset with KMeans and write a config snippet"
    )
    _add_source_args(p)
    p.add_argument("--k", type=int, default=9, help="KMeans clusters (default 9)")
    p.add_argument(
        "--min-size", type=int, default=800, help="training resize short side (default 800)"
    )
    p.add_argument(
        "--max-size", type=int, default=1333, help="training resize long-side cap (default 1333)"
    )
    p.add_argument("--fixed-size", type=int, help="square training size instead of min/max size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out", default="anchors.yaml", help="YAML snippet to write (default anchors.yaml)"
    )
    p.set_defaults(func=_cmd_anchors)

    p = sub.add_parser("train", help="train a detector; writes a run folder")
    p.add_argument("--data", help="training data (any supported format)")
    p.add_argument("--val", help="validation data (default: hold out --val-split of --data)")
    p.add_argument("--val-split", type=float, help="fraction held out for validation (default 0.2)")
    p.add_argument("--model", help="model name (frcnn models; default resnet50_fpn)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--img-size", type=int, help="longest image side in pixels")
    p.add_argument("--out", help="run folder (default runs/train, numbered if taken)")
    p.add_argument("--weights", help="start from an frcnn model file or a torchvision .pth")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--time-budget", type=float, help="minutes of training (schedule fitted to it)")
    p.add_argument("--tile", type=int, help="train on tiles of this size")
    p.add_argument("--overlap", type=float, help="tile overlap fraction (default 0.2)")
    p.add_argument("overrides", nargs="*", help="section.key=value, e.g. optim.lr=0.01")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="COCO metrics, per-class table, F1, curves")
    p.add_argument("--weights", help="frcnn model file")
    p.add_argument("--data", required=True, help="ground truth (any supported format)")
    p.add_argument("--predictions", help="score this COCO results file instead of running a model")
    p.add_argument("--split", help="split of --data (default train, or the only one)")
    p.add_argument("--format", choices=["coco", "yolo", "voc", "csv", "hf"])
    p.add_argument("--out", help="folder for metrics.json, per_class.csv and plots")
    p.add_argument(
        "--conf", type=float, default=0.25, help="score threshold for P/R/F1 (default 0.25)"
    )
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("predict", help="detect objects in images")
    p.add_argument("--weights", required=True, help="frcnn model file")
    p.add_argument("sources", nargs="+", help="image files, folders or globs")
    p.add_argument("--out", help="output folder")
    p.add_argument("--conf", type=float, default=0.25, help="score threshold (default 0.25)")
    p.add_argument(
        "--save-images", action="store_true", help="also write the images with boxes drawn"
    )
    p.add_argument("--format", choices=["json", "coco", "csv"], default="json")
    p.add_argument("--tile", type=int, help="tiled inference with tiles of this size")
    p.add_argument("--overlap", type=float, default=0.2, help="tile overlap fraction (default 0.2)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("models", help="list the registered model names")
    p.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except (ValueError, TypeError, KeyError, FileNotFoundError, RuntimeError, ImportError) as err:
        if os.environ.get("FRCNN_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"frcnn {args.command}: error: {message}", file=sys.stderr)
        return 2
