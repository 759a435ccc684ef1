"""frcnn vs torchvision Faster R-CNN (ResNet-50 FPN), same weights, one process, alternating.

Prints the median inference time per image at 400 and 800 px (and of MobileNetV3-Large-320
FPN), ours also through ``frcnn.deploy.optimize`` ("fast": batch norms folded), the median training step time
(batch 2, 400 px) for training from scratch (BatchNorm, all stages, torchvision's default
without pretrained weights) and for fine-tuning (frozen BatchNorm, 3 trainable stages,
torchvision's default with them), and the ratios ours / torchvision (< 1 means we are faster).

    .venv/bin/python benchmarks/vs_torchvision.py [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torchvision.models.detection import FasterRCNN as TVFasterRCNN
from torchvision.models.detection import (
    fasterrcnn_mobilenet_v3_large_320_fpn,
    fasterrcnn_resnet50_fpn,
)
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops import FrozenBatchNorm2d

from frcnn.deploy.optimize import optimize
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


def inference(size: int, repeats: int, mobilenet: bool = False) -> dict[str, float]:
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
    return alternate({"torchvision": run(tv), "frcnn": run(ours), "frcnn fast": run(fast)}, repeats)


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
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats}")
    rows = [
        ("inference 400 px, per image", inference(400, args.repeats)),
        ("inference 800 px, per image", inference(800, args.repeats)),
        ("MobileNetV3-L 320 FPN, per image", inference(320, args.repeats, mobilenet=True)),
        ("train step, batch 2, 400 px, scratch", training(400, args.repeats, finetune=False)),
        ("train step, batch 2, 400 px, fine-tune", training(400, args.repeats, finetune=True)),
    ]
    print(f"{'':40s} {'torchvision':>12s} {'frcnn':>10s} {'ratio':>7s} {'fast':>9s} {'ratio':>7s}")
    for name, t in rows:
        ratio = t["frcnn"] / t["torchvision"]
        line = f"{name:40s} {t['torchvision']:11.3f}s {t['frcnn']:9.3f}s {ratio:7.3f}"
        if "frcnn fast" in t:
            fast = t["frcnn fast"]
            line += f" {fast:8.3f}s {fast / t['torchvision']:7.3f}"
        print(line)


if __name__ == "__main__":
    main()
