import numpy as np
import pytest
import torch
from PIL import Image

from frcnn.inference.tiling import merge_tiles, predict_tiled


def oracle(objects: torch.Tensor, image_width: int, image_height: int):
    """A perfect detector that sees, in each crop, the part of every object inside it."""

    def detect(crops, windows):
        out = []
        for crop, (x1, y1) in zip(crops, windows, strict=True):
            h, w = crop.shape[-2:]
            boxes = objects - torch.tensor([x1, y1, x1, y1], dtype=torch.float32)
            clipped = torch.stack(
                [
                    boxes[:, 0].clamp(0, w),
                    boxes[:, 1].clamp(0, h),
                    boxes[:, 2].clamp(0, w),
                    boxes[:, 3].clamp(0, h),
                ],
                1,
            )
            visible = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
            out.append(
                {
                    "boxes": clipped[visible],
                    "scores": torch.full((int(visible.sum()),), 0.9),
                    "labels": torch.ones(int(visible.sum()), dtype=torch.int64),
                }
            )
        return out

    return detect


def test_object_straddling_a_seam_is_reported_once():
    # 400 x 200 image, tiles of 200 with overlap 0.25 (step 150): windows at x = 0, 150, 200
    objects = torch.tensor([[180.0, 50.0, 230.0, 100.0], [20.0, 20.0, 60.0, 60.0]])
    windows_seen = []
    detect_crops = oracle(objects, 400, 200)

    def detector(crops):
        # recover each crop's window from the call order, as predict_tiled issues them
        from frcnn.data.tiles import tile_windows

        wins = tile_windows(400, 200, 200, 0.25)[len(windows_seen) : len(windows_seen) + len(crops)]
        windows_seen.extend(wins.tolist())
        return detect_crops(crops, [(w[0], w[1]) for w in wins.tolist()])

    result = predict_tiled(detector, torch.zeros(3, 200, 400), tile=200, overlap=0.25, batch_size=2)
    assert len(windows_seen) == 3
    boxes = result["boxes"]
    assert len(boxes) == 2  # not the partial views of the seam object
    assert any(torch.allclose(b, objects[0]) for b in boxes) and any(
        torch.allclose(b, objects[1]) for b in boxes
    )


def test_merge_drops_cut_partial_inside_a_whole_view():
    boxes = torch.tensor(
        [[180.0, 50.0, 200.0, 100.0], [180.0, 50.0, 230.0, 100.0], [0.0, 0.0, 10.0, 10.0]]
    )
    scores = torch.tensor([0.95, 0.9, 0.8])
    labels = torch.tensor([1, 1, 1])
    cut = torch.tensor([True, False, False])
    keep = merge_tiles(boxes, scores, labels, cut)
    assert sorted(keep.tolist()) == [1, 2]
    # a cut box of another class is not merged away
    keep = merge_tiles(boxes, scores, torch.tensor([2, 1, 1]), cut)
    assert sorted(keep.tolist()) == [0, 1, 2]
    assert np.isfinite(keep.numpy()).all()


def test_predict_takes_images_in_memory(tmp_path, tiny_model):
    import frcnn
    from frcnn.demo import two_object_image

    tiny_model.eval()
    tiny_model.roi_heads.score_thresh = 0.0
    weights = frcnn.save_model(tiny_model, tmp_path / "m.safetensors")
    image = two_object_image()[0]  # CHW float
    array = (image * 255).round().byte().permute(1, 2, 0).numpy()  # HxWx3 uint8
    Image.fromarray(array).save(tmp_path / "a.png")
    from_file = frcnn.predict(weights, str(tmp_path / "a.png"), conf=0.0)[0]
    assert len(from_file.boxes) > 0
    tensor = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    inputs = [Image.fromarray(array), array, array.astype(np.float32) / 255, tensor]
    results = frcnn.predict(weights, inputs, conf=0.0, out=tmp_path / "o", save_images=True)
    for r in results:
        np.testing.assert_allclose(r.boxes, from_file.boxes, atol=1e-3)
        np.testing.assert_allclose(r.scores, from_file.scores, atol=1e-5)
    assert [r.path.name for r in results] == ["image0", "image1", "image2", "image3"]
    assert len(list((tmp_path / "o" / "images").glob("*.jpg"))) == 4
    single = frcnn.predict(weights, Image.fromarray(array), conf=0.0)
    assert len(single) == 1
    with pytest.raises(ValueError, match="HxWx3"):
        frcnn.predict(weights, np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="not both"):
        frcnn.predict(weights, [str(tmp_path / "a.png"), array])
