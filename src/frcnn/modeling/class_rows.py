"""A new box predictor that keeps what an old one knew about classes of the same name:
the classification and box-regression rows of each class the two share (by name, with a
few synonyms between dataset vocabularies) are copied; the rest stay freshly initialised."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# Names datasets use for a COCO category -> COCO's (Pascal VOC's and common variants).
SYNONYMS = {
    "aeroplane": "airplane",
    "plane": "airplane",
    "motorbike": "motorcycle",
    "bike": "bicycle",
    "sofa": "couch",
    "tvmonitor": "tv",
    "tv monitor": "tv",
    "television": "tv",
    "diningtable": "dining table",
    "pottedplant": "potted plant",
    "cellphone": "cell phone",
    "mobile phone": "cell phone",
    "people": "person",
    "pedestrian": "person",
}
PREDICTOR = "roi_heads.predictor."


def class_key(name: str) -> str:
    """A class name as compared: lower case, ``_``/``-`` as spaces, synonyms resolved."""
    key = " ".join(name.lower().replace("_", " ").replace("-", " ").split())
    return SYNONYMS.get(key, SYNONYMS.get(key.replace(" ", ""), key))


def matching_classes(
    source: Sequence[str], target: Sequence[str], skip: Sequence[int] = ()
) -> dict[int, int]:
    """``{target class index: source class index}`` (1-based, background excluded) for the
    target classes whose name matches a source class; ``skip`` lists source indices never
    matched (placeholders)."""
    keys = {}
    for i, name in enumerate(source, start=1):
        if i not in skip:
            keys.setdefault(class_key(name), i)
    return {
        i: keys[class_key(name)]
        for i, name in enumerate(target, start=1)
        if class_key(name) in keys
    }


def copy_class_rows(
    own: dict[str, Tensor], source: dict[str, Tensor], rows: dict[int, int]
) -> dict[str, Tensor]:
    """The predictor tensors of ``own`` with ``rows`` (own class -> source class, background
    0 -> 0 included when wanted) copied from ``source``'s predictor."""
    to = torch.tensor(list(rows), dtype=torch.long)
    frm = torch.tensor(list(rows.values()), dtype=torch.long)
    out = {}
    for part in ("cls_score", "bbox_pred"):
        for kind in ("weight", "bias"):
            key = f"{PREDICTOR}{part}.{kind}"
            mine, theirs = own[key].clone(), source[key]
            if part == "bbox_pred":  # four rows per class
                shape = mine.shape
                mine = mine.reshape(-1, 4, *shape[1:])
                mine[to] = theirs.reshape(-1, 4, *shape[1:])[frm]
                mine = mine.reshape(shape)
            else:
                mine[to] = theirs[frm]
            out[key] = mine
    return out
