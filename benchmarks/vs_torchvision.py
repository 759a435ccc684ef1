"""frcnn vs torchvision Faster R-CNN (ResNet-50 FPN), same weights, one process, alternating.

Prints the median inference time per image at 400 and 800 px (and of MobileNetV3-Large-320
FPN), ours also through ``frcnn.deploy.optimize`` ("fast": batch norms folded, exact), in
bfloat16 (``--precision bf16``: not exact) and, for ResNet-50, run by ONNX Runtime and by
OpenVINO (the float32 export, and int8 calibrated on the timed image: speed only), the
median training step time (batch 2, 400 px) for training from scratch (BatchNorm, all
stages, torchvision's default without pretrained weights) and for fine-tuning (frozen
BatchNorm, 3 trainable stages, torchvision's default with them), and the ratios ours /
torchvision (< 1 means we are faster).

    .venv/bin/python benchmarks/vs_torchvision.py [--repeats 5] [--threads N] [--no-onnx]
        [--no-openvino]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.models.detection import FasterRCNN as TVFasterRCNN
from torchvision.models.detection import (
    fasterrcnn_mobilenet_v3_large_320_fpn,
    fasterrcnn_resnet50_fpn,
)
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops import FrozenBatchNorm2d

from frcnn.deploy.optimize import optimize
from frcnn.deploy.precision import with_precision
from frcnn.io.convert import model_from_torchvision


def alternate(
    fns: dict[str, Callable[[], None]], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved so drift hits both."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def images_at(size: int, n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, size, size * 4 // 3, generator=g) for _ in range(n)]


def inference(
    size: int, repeats: int, mobilenet: bool = False, onnx: bool = False, openvino: bool = False
) -> dict[str, float]:
    """Per-image inference of torchvision's model, ours with the same weights, and ours
    through ``frcnn.deploy.optimize`` (batch norms folded; the default of predict)."""
    torch.manual_seed(0)
    if mobilenet:  # torchvision's 320 px model keeps its own sizes
        tv = fasterrcnn_mobilenet_v3_large_320_fpn(
            weights=None, weights_backbone=None, num_classes=91
        ).eval()
        ours = model_from_torchvision(tv.state_dict(), "mobilenet_v3_large_320_fpn").eval()
    else:
        kw = dict(min_size=size, max_size=size * 1333 // 800)
        tv = fasterrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, num_classes=91, **kw
        ).eval()
        ours = model_from_torchvision(tv.state_dict(), **kw).eval()
    images = images_at(size, 1, seed=size)

    def run(model):
        def call():
            with torch.inference_mode():
                model(images)

        return call

    fast = optimize(ours)
    bf16 = with_precision(optimize(ours), "bf16")
    fns = {"torchvision": run(tv), "frcnn": run(ours), "frcnn fast": run(fast), "bf16": run(bf16)}
    if onnx or openvino:
        fns.update(exported_runners(fast, images, onnx, openvino))
    return alternate(fns, repeats)


def exported_runners(
    model, images: list[torch.Tensor], onnx: bool, openvino: bool
) -> dict[str, Callable[[], None]]:
    """ONNX Runtime and OpenVINO running ``model``'s export (float32; the IR converted from
    the ONNX graph) and its int8 versions (calibrated on the timed image itself: a speed
    figure only; accuracy is measured on real data by ``frcnn benchmark --data``)."""
    from frcnn.deploy.export import export_onnx
    from frcnn.deploy.exported import OnnxDetector, OpenVinoDetector
    from frcnn.deploy.openvino import onnx_to_ir, quantize_ir
    from frcnn.deploy.quantize import quantize_int8

    folder = Path(tempfile.mkdtemp(prefix="frcnn-bench-"))
    fp32 = export_onnx(model, folder / "m.onnx", dynamic=True)
    calibration = [images[0].numpy()]
    runners = {}
    if onnx:
        int8 = quantize_int8(fp32, folder / "m.int8.onnx", calibration)
        runners |= {"onnx": OnnxDetector(fp32), "onnx int8": OnnxDetector(int8)}
    if openvino:
        ir = onnx_to_ir(fp32, folder / "m.xml")
        ir8 = quantize_ir(ir, folder / "m.int8.xml", calibration)
        runners |= {"openvino": OpenVinoDetector(ir), "openvino int8": OpenVinoDetector(ir8)}
    return {name: (lambda r=r: r(images)) for name, r in runners.items()}


def training(size: int, repeats: int, finetune: bool) -> dict[str, float]:
    torch.manual_seed(0)
    kw = dict(min_size=size, max_size=size * 1333 // 800)
    if finetune:
        backbone = resnet_fpn_backbone(
            backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=3
        )
        tv = TVFasterRCNN(backbone, num_classes=91, **kw)
        ours = model_from_torchvision(tv.state_dict(), **kw)
    else:
        tv = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, **kw)
        ours = model_from_torchvision(tv.state_dict(), norm="bn", trainable_backbone_layers=5, **kw)
    images = images_at(size, 2, seed=size + 1)
    g = torch.Generator().manual_seed(7)
    targets = []
    for _ in images:
        xy = torch.rand(4, 2, generator=g) * size * 0.6
        wh = 20 + torch.rand(4, 2, generator=g) * size * 0.3
        targets.append(
            {
                "boxes": torch.cat([xy, xy + wh], 1),
                "labels": torch.randint(1, 91, (4,), generator=g),
            }
        )

    def step(model):
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
        model.train()

        def call():
            losses = model(images, targets)
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()

        return call

    return alternate({"torchvision": step(tv), "frcnn": step(ours)}, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime columns")
    parser.add_argument("--no-openvino", action="store_true", help="skip the OpenVINO columns")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}")
    exports = {"onnx": not args.no_onnx, "openvino": not args.no_openvino}
    rows = [
        ("inference 400 px, per image", inference(400, args.repeats, **exports)),
        ("inference 800 px, per image", inference(800, args.repeats, **exports)),
        ("MobileNetV3-L 320 FPN, per image", inference(320, args.repeats, mobilenet=True)),
        ("train step, batch 2, 400 px, scratch", training(400, args.repeats, finetune=False)),
        ("train step, batch 2, 400 px, fine-tune", training(400, args.repeats, finetune=True)),
    ]
    columns = ("frcnn", "frcnn fast", "bf16", "onnx", "onnx int8", "openvino", "openvino int8")
    head = "".join(f"{c:>13s} {'ratio':>6s}" for c in columns)
    print(f"{'':40s} {'torchvision':>11s}{head}   (ratio: / torchvision)")
    for name, t in rows:
        line = f"{name:40s} {t['torchvision']:10.3f}s"
        for c in columns:
            line += f"{t[c]:12.3f}s {t[c] / t['torchvision']:6.3f}" if c in t else f"{'-':>20s}"
        print(line)


if __name__ == "__main__":
    main()
