import torch
from torchvision.ops import box_iou

from frcnn.demo import fit_one_image, two_object_image


def test_tiny_model_overfits_one_image(tiny_model):
    """A small detector from random init finds both objects of one image after 200 steps."""
    torch.manual_seed(0)
    image, target = two_object_image()
    fit_one_image(tiny_model, image, target, steps=200)
    tiny_model.eval()
    with torch.no_grad():
        det = tiny_model([image])[0]
    for gt_box, label in zip(target["boxes"], target["labels"], strict=True):
        mine = (det["labels"] == label) & (det["scores"] > 0.9)
        assert mine.any(), f"class {int(label)}: no detection above 0.9 in {det}"
        best_iou = box_iou(gt_box[None], det["boxes"][mine]).max()
        assert best_iou > 0.8, f"class {int(label)}: best IoU {best_iou:.3f}"
    # The channels-last backbone (the default) and NCHW agree on a trained model.
    tiny_model.channels_last = False
    with torch.no_grad():
        nchw = tiny_model([image])[0]
    strong = det["scores"] > 0.5
    assert torch.equal(nchw["labels"][strong], det["labels"][strong])
    torch.testing.assert_close(nchw["boxes"][strong], det["boxes"][strong], rtol=0, atol=1e-3)
    torch.testing.assert_close(nchw["scores"][strong], det["scores"][strong], rtol=0, atol=1e-4)
