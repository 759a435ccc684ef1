"""COCO-style metrics through faster-coco-eval (numbers equal to pycocotools' COCOeval)."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.records import DetectionDataset
from ..errors import InputError

# The 12 numbers of COCOeval.summarize(), in its order.
COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def coco_ground_truth(ds: DetectionDataset) -> dict:
    """A COCO ground-truth dict: category id = frcnn label, bbox ``[x, y, w, h]``, area = w*h,
    crowd and ignore (VOC difficult) boxes as ``iscrowd`` regions."""
    images, annotations = [], []
    for rec in ds.images:
        images.append(
            {
                "id": int(rec.image_id),
                "width": rec.width,
                "height": rec.height,
                "file_name": rec.file_name,
            }
        )
        b = rec.boxes.astype(np.float64)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        crowd = rec.iscrowd | rec.ignore
        for i in range(len(b)):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": int(rec.image_id),
                    "category_id": int(rec.labels[i]),
                    "bbox": [float(b[i, 0]), float(b[i, 1]), float(w[i]), float(h[i])],
                    "area": float(w[i] * h[i]),
                    "iscrowd": int(crowd[i]),
                }
            )
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(ds.class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_results(predictions: Sequence[dict]) -> list[dict]:
    """Detections as a COCO results list. Each prediction dict has ``image_id`` and numpy or
    tensor ``boxes`` [N, 4] xyxy, ``scores`` [N], ``labels`` [N]."""
    out = []
    for pred in predictions:
        boxes = np.asarray(pred["boxes"], np.float64).reshape(-1, 4)
        scores = np.asarray(pred["scores"], np.float64).reshape(-1)
        labels = np.asarray(pred["labels"], np.int64).reshape(-1)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        out += [
            {
                "image_id": int(pred["image_id"]),
                "category_id": int(c),
                "bbox": [float(v) for v in bb],
                "score": float(s),
            }
            for bb, s, c in zip(xywh, scores, labels, strict=True)
        ]
    return out


def results_conf(path: str | Path, default: float) -> float:
    """The score threshold a results file says its predictions were scored at (``conf``
    beside ``annotations``, as ``frcnn kfold`` writes), else ``default``."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):  # JSON and Unicode errors are ValueErrors
        return default  # read_coco_results says what is wrong with the file
    value = raw.get("conf") if isinstance(raw, dict) else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
    return float(value) if ok else default


def read_coco_results(path: str | Path, ground_truth: DetectionDataset | None = None) -> list[dict]:
    """A COCO results file (a list, or a dict with the list under ``annotations`` as
    ``frcnn predict --format coco`` writes) as per-image predictions: ``image_id``, ``boxes``
    [N, 4] xyxy, ``scores`` [N], ``labels`` [N] (numpy). With ``ground_truth``, the ids of a
    file that lists its images are matched to the ground truth's (see :func:`_ids_by_file`).
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8-sig"))
        results = raw["annotations"] if isinstance(raw, dict) else raw
        rows = [(int(r["image_id"]), r) for r in results]
        for _, r in rows:
            r["bbox"], r["score"], r["category_id"] = (
                list(r["bbox"]),
                float(r["score"]),
                int(r["category_id"]),
            )
    except (KeyError, TypeError, ValueError, RecursionError) as err:
        raise InputError(
            f"{path}: not a COCO results file (a list of image_id, category_id, bbox, score): "
            f"{type(err).__name__} {err}"
        ) from None
    ids = _ids_by_file(raw, path, ground_truth) if ground_truth is not None else None
    if ids is not None:
        rows = [(ids[image_id], r) for image_id, r in rows]
    by_image: dict[int, list[dict]] = {}
    for image_id, r in rows:
        by_image.setdefault(image_id, []).append(r)
    preds = []
    for image_id, rows in by_image.items():
        xywh = np.array([r["bbox"] for r in rows], np.float64).reshape(-1, 4)
        scores = np.array([r["score"] for r in rows], np.float64)
        bad = ~(np.isfinite(xywh).all(1) & np.isfinite(scores))
        if bad.any():
            row = rows[int(np.flatnonzero(bad)[0])]
            raise InputError(
                f"{path}: image_id {image_id} has {int(bad.sum())} result(s) with a non-finite "
                f"box or score, e.g. bbox {row['bbox']} score {row['score']}"
            )
        preds.append(
            {
                "image_id": image_id,
                "boxes": np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1),
                "scores": scores,
                "labels": np.array([r["category_id"] for r in rows], np.int64),
            }
        )
    if ground_truth is not None:
        _check_against(preds, ground_truth, path)
    return preds


def _check_against(preds: list[dict], ds: DetectionDataset, path: str | Path) -> None:
    """Results that belong to other data are refused, not scored as misses.

    Raises:
        InputError: image ids the data does not have, or category ids outside its classes.
    """
    known = {int(r.image_id) for r in ds.images}
    strangers = sorted({p["image_id"] for p in preds} - known)
    if strangers:
        raise InputError(
            f"{path}: {len(strangers)} image ids the data does not have (e.g. "
            f"{strangers[:5]}): were these predictions made on other images? Score results "
            "made on this data (frcnn predict --format coco on its images, or kfold's "
            "oof_predictions.json)"
        )
    k = len(ds.class_names)
    labels = np.concatenate([p["labels"] for p in preds]) if preds else np.zeros(0, int)
    wrong = sorted({int(c) for c in labels if not 1 <= c <= k})
    if wrong:
        raise InputError(
            f"{path}: category ids {wrong[:10]} are not classes of the data (1..{k}: "
            f"{', '.join(ds.class_names[:10])}): were these predictions made with other "
            "classes?"
        )


class CocoEvaluation:
    """Runs COCOeval (bbox) and keeps what the reports need.

    Attributes:
        stats: the 12 summary numbers, keyed by :data:`COCO_KEYS`.
        precision: COCOeval's precision array [T=10 IoUs, R=101 recalls, K classes, A=4 areas,
            M=3 max-dets], -1 where a class has no ground truth.
        recall: COCOeval's recall array [T, K, A, M].
        summary: the text COCOeval prints.

    Args:
        max_dets: the most detections per image counted (COCO's third ``maxDets``, 100 by
            default; raise it for scenes with more objects). The keys ``AR100`` and the
            AP numbers use it.
        area_ranges: object areas (pixels squared, both ends included, as COCO) to use
            instead of COCO's small/medium/large; no summary then (``stats`` are NaN).
    """

    def __init__(
        self,
        gt: dict,
        results: list[dict],
        max_dets: int = 100,
        area_ranges: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        from faster_coco_eval import COCO, COCOeval_faster

        coco_gt = COCO(gt)
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.maxDets = [1, 10, int(max_dets)]
        if area_ranges is not None:  # sizes of one's own: no COCO summary then
            evaluator.params.areaRng = [
                [0.0, 1e10],
                *[[float(a), float(b)] for a, b in area_ranges],
            ]
            evaluator.params.areaRngLbl = ["all", *[f"size{i}" for i in range(len(area_ranges))]]
        buffer = io.StringIO()
        evaluator.print_function = lambda *args: print(*args, file=buffer)
        with contextlib.redirect_stdout(buffer):
            evaluator.evaluate()
            evaluator.accumulate()
            if area_ranges is None:
                evaluator.summarize()
        # The 12 summary lines only, not the evaluator's progress messages.
        lines = buffer.getvalue().splitlines()
        self.summary = "\n".join(s for s in lines if s.lstrip().startswith("Average")) + "\n"
        stats = evaluator.stats[:12] if area_ranges is None else [np.nan] * 12
        self.stats = {k: float(v) for k, v in zip(COCO_KEYS, stats, strict=True)}
        self.precision = np.asarray(evaluator.eval["precision"])
        self.recall = np.asarray(evaluator.eval["recall"])
        self.category_ids = list(evaluator.params.catIds)

    def per_class_ap(self) -> tuple[np.ndarray, np.ndarray]:
        """``(AP50, AP50-95)`` per category (in ``category_ids`` order); NaN without ground
        truth."""
        p = self.precision[:, :, :, 0, -1]  # all areas, max_dets detections: (T, R, K)
        valid = p > -1
        with np.errstate(invalid="ignore"):
            ap = np.where(valid, p, 0).sum((0, 1)) / valid.sum((0, 1))
            ap50 = np.where(valid[0], p[0], 0).sum(0) / valid[0].sum(0)
        return ap50, ap


def _ids_by_file(raw: object, path: str | Path, ds: DetectionDataset) -> dict[int, int] | None:
    """For a results file that lists its images (``frcnn predict --format coco`` numbers
    them 1..N and names each file): its image ids -> the ground truth's, matched by file:
    the same resolved path, else the same file name when it is unique in ``ds``. None for a
    plain results list (its ids must be the ground truth's).

    Raises:
        ValueError: a listed image is not in the ground truth, naming it.
    """
    if not isinstance(raw, dict) or not raw.get("images"):
        return None
    whole = [r for r in ds.images if r.window is None]
    by_path = {str(Path(r.path).resolve()): r.image_id for r in whole if r.path is not None}
    names = Counter(Path(r.file_name).name for r in whole)
    by_name = {Path(r.file_name).name: r.image_id for r in whole}
    by_name = {n: i for n, i in by_name.items() if names[n] == 1}
    ids = {}
    for image in raw["images"]:
        file = str(image["file_name"])
        found = by_path.get(str(Path(file).resolve()), by_name.get(Path(file).name))
        if found is None:
            raise InputError(f"{path}: image {file} (id {image['id']}) is not in the ground truth")
        ids[int(image["id"])] = found
    return ids
