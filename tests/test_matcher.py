import torch

from frcnn.boxes.matcher import BACKGROUND, FOREGROUND, IGNORE, Matcher
from frcnn.boxes.sampler import subsample_labels


def test_matcher_literal_iou_matrix():
    # 2 ground-truth boxes x 5 predictions
    iou = torch.tensor(
        [
            [0.9, 0.5, 0.1, 0.0, 0.2],
            [0.1, 0.6, 0.2, 0.35, 0.2],
        ]
    )
    matched, labels = Matcher(0.7, 0.3)(iou)
    assert matched.tolist() == [0, 1, 1, 1, 0]
    assert labels.tolist() == [FOREGROUND, IGNORE, BACKGROUND, IGNORE, BACKGROUND]


def test_matcher_low_quality_matches_give_every_gt_its_best_predictions():
    iou = torch.tensor(
        [
            [0.9, 0.5, 0.1, 0.0],
            [0.1, 0.6, 0.2, 0.6],  # best IoU 0.6, tied between predictions 1 and 3
        ]
    )
    matched, labels = Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou)
    assert matched.tolist() == [0, 1, 1, 1]
    assert labels.tolist() == [FOREGROUND, FOREGROUND, BACKGROUND, FOREGROUND]


def test_matcher_without_ground_truth_is_all_background():
    matched, labels = Matcher(0.5, 0.5)(torch.zeros(0, 4))
    assert matched.tolist() == [0, 0, 0, 0]
    assert labels.tolist() == [BACKGROUND] * 4


def test_sampler_fractions():
    torch.manual_seed(0)
    labels = torch.tensor(
        [FOREGROUND] * 100 + [BACKGROUND] * 1000 + [IGNORE] * 50, dtype=torch.int8
    )
    pos, neg = subsample_labels(labels, 256, 0.25)
    assert pos.numel() == 64 and neg.numel() == 192
    assert (labels[pos] == FOREGROUND).all() and (labels[neg] == BACKGROUND).all()
    assert pos.unique().numel() == 64 and neg.unique().numel() == 192


def test_sampler_fills_with_background_when_few_positives():
    labels = torch.tensor([FOREGROUND] * 10 + [BACKGROUND] * 1000, dtype=torch.int8)
    pos, neg = subsample_labels(labels, 256, 0.5)
    assert pos.numel() == 10 and neg.numel() == 246


def test_sampler_takes_what_there_is():
    labels = torch.tensor([FOREGROUND] * 3 + [BACKGROUND] * 5 + [IGNORE] * 2, dtype=torch.int8)
    pos, neg = subsample_labels(labels, 256, 0.5)
    assert sorted(pos.tolist()) == [0, 1, 2] and sorted(neg.tolist()) == [3, 4, 5, 6, 7]
