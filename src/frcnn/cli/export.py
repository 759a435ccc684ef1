"""``frcnn export``: a model file as ONNX, TorchScript or OpenVINO IR, checked against PyTorch
right after writing."""

from __future__ import annotations

import argparse

from ..defaults import EXPORT_FORMATS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a model to ONNX, TorchScript or OpenVINO (checked against PyTorch)",
        description="Write the whole detector (preprocessing included) as one graph: a "
        "float32 image [3, H, W] in 0..1 in; boxes, scores, labels out. ONNX (run by ONNX "
        "Runtime), TorchScript, or OpenVINO IR (WEIGHTS.xml + .bin: the ONNX graph converted; "
        "needs frcnn[openvino]). The export is run on a few images right away and must detect "
        "what PyTorch detects.",
    )
    p.add_argument("--weights", required=True, help="frcnn model file (.safetensors)")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="onnx")
    p.add_argument("--out", help="file to write (default: WEIGHTS with the format's suffix)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument(
        "--fixed",
        action="store_true",
        help="ONNX or OpenVINO at the model's input size only, for runtimes that need static "
        "shapes (written as WEIGHTS.fixed.onnx / .fixed.xml; images of other sizes are "
        "stretched to it). "
        "Default: any image height and width, with PyTorch's detections at each",
    )
    shape.add_argument("--dynamic", action="store_true", help="any image size (the default)")
    reduced = p.add_mutually_exclusive_group()
    reduced.add_argument(
        "--half",
        action="store_true",
        help="ONNX with the backbone, RPN conv and box head in float16 (for GPUs; box "
        "arithmetic stays float32); written as WEIGHTS.fp16.onnx",
    )
    reduced.add_argument(
        "--int8",
        action="store_true",
        help="those layers quantised to int8, calibrated on --data: ONNX by ONNX Runtime's "
        "static quantisation (WEIGHTS.int8.onnx), OpenVINO by NNCF's post-training "
        "quantisation (WEIGHTS.int8.xml)",
    )
    p.add_argument("--data", help="images to calibrate --int8 on (any dataset format)")
    p.add_argument(
        "--calibration-images", type=int, default=32, help="how many of them (default 32)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..deploy.export import export_model

    precision = "fp16" if args.half else "int8" if args.int8 else "fp32"
    out, cases = export_model(
        args.weights,
        args.format,
        args.out,
        args.opset,
        False if args.fixed else None,
        precision,
        args.data,
        args.calibration_images,
    )
    for case in cases:
        print(f"  {case.line()}")
    if not (args.fixed or args.format == "torchscript"):
        shape = "any height and width"
    else:
        h, w = cases[0].size  # the first check image is at the model's input size
        shape = f"{h}x{w} images (others are stretched to it, boxes mapped back)"
    print(f"wrote {out}: float32 [3, H, W] RGB in 0..1, {shape}; {checked(cases, precision)}")
    if precision != "fp32":
        print(
            f"{precision}: detections differ from fp32 by the amounts above; measure the "
            f"accuracy cost with frcnn benchmark --weights {args.weights} --formats "
            f"pytorch,{args.format}-{precision} --data DATA"
        )
    return 0


def checked(cases: list, precision: str) -> str:
    """What the check after writing showed: the same detections as PyTorch (fp32, where
    any difference fails the export), or how many of PyTorch's were matched."""
    if precision == "fp32":
        return f"checked against PyTorch: the same detections on {len(cases)} images"
    total = sum(c.detections for c in cases)
    matched = sum(c.matched for c in cases)
    from ..deploy.parity import MATCH_GATE

    return (
        f"compared with PyTorch (not required to match): {matched} of its {total} "
        f"detections matched within {MATCH_GATE:g} px on {len(cases)} images"
    )
