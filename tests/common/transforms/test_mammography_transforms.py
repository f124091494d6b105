"""Mammogram detection preprocessing: loading layout, breast crop and resize with boxes, mapping back, augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.data import ImageFileError, write_mammogram_dicom
from common.transforms import (
    BoxesToOriginald,
    BreastCropd,
    LoadMammogramd,
    RandFactorFromList,
    RandFactorFromListd,
    ResizeWithBoxesd,
    load_mammogram,
)

H, W = 120, 80


def _breast(photometric: str = "MONOCHROME2") -> np.ndarray:
    """A half-ellipse breast against the left edge (x < 60) with a bright spot at row 50, column 30."""
    rows, cols = np.mgrid[:H, :W]
    breast = ((rows - H / 2) / 55.0) ** 2 + (cols / 60.0) ** 2 < 1
    image = np.where(breast, 2000, 20).astype(np.uint16)
    image[49:52, 29:32] = 4000
    return (4095 - image).astype(np.uint16) if photometric == "MONOCHROME1" else image


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_load_puts_x_first_and_reads_monochrome1_as_displayed(tmp_path: Path, photometric: str):
    path = write_mammogram_dicom(tmp_path / "a.dcm", _breast(photometric), "P1", "L", "CC", photometric=photometric)
    image = LoadMammogramd("image")({"image": str(path)})["image"]
    assert image.shape == (1, W, H)
    assert image.meta["original_shape"] == [H, W] and image.meta["filename_or_obj"] == str(path)
    # the spot (row 50, column 30) is the brightest pixel whatever the photometric interpretation
    x, y = np.unravel_index(int(image[0].argmax()), image.shape[1:])
    assert (x, y) == (29, 49)


def test_load_reads_the_16_bit_png_layout(tmp_path: Path):
    Image.fromarray(_breast().astype(np.uint16)).save(tmp_path / "a.png")
    image = load_mammogram(tmp_path / "a.png")
    assert image.shape == (1, W, H) and float(image.max()) == 4000.0


def test_load_rejects_other_files_by_name(tmp_path: Path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(ImageFileError, match=r"a\.jpg.*unsupported"):
        load_mammogram(tmp_path / "a.jpg")


def test_crop_resize_and_back_maps_boxes_to_the_file_pixels(tmp_path: Path):
    path = write_mammogram_dicom(tmp_path / "a.dcm", _breast(), "P1", "L", "CC")
    box = np.array([[25.0, 45.0, 36.0, 56.0]])  # around the spot, in the file's pixels
    item = LoadMammogramd("image")({"image": str(path), "box": box})
    item = BreastCropd("image", box_keys="box", margin=0)(item)
    x1, y1, x2, y2 = item["image"].meta["breast_box"]
    assert x1 == 0 and x2 == 60 and 0 < y1 < 10 and H - 10 < y2 <= H  # the half-ellipse, not the whole image
    assert item["image"].shape == (1, x2 - x1, y2 - y1)
    np.testing.assert_allclose(item["box"].numpy(), box - [x1, y1, x1, y1])

    item = ResizeWithBoxesd("image", spatial_size=(32, 64), box_keys="box")(item)
    assert item["image"].shape == (1, 32, 64)
    sx, sy = item["image"].meta["resize_scale"]
    assert sx == pytest.approx(32 / 60) and sy == pytest.approx(64 / (y2 - y1))
    # the spot is still inside the scaled box
    bx1, by1, bx2, by2 = item["box"][0].tolist()
    x, y = np.unravel_index(int(item["image"][0].argmax()), (32, 64))
    assert bx1 <= x <= bx2 and by1 <= y <= by2

    item["pred_box"] = item["box"].clone()
    back = BoxesToOriginald("pred_box")(item)["pred_box"]
    np.testing.assert_allclose(back.numpy(), box, atol=1e-4)
    # one post-processing for evaluation (gt and predictions) and inference (predictions only)
    both = BoxesToOriginald(["box", "pred_box"], allow_missing_keys=True)({k: item[k] for k in ("image", "pred_box")})
    assert "box" not in both
    np.testing.assert_allclose(both["pred_box"].numpy(), box, atol=1e-4)


def test_crop_names_the_file_without_breast_tissue(tmp_path: Path):
    path = write_mammogram_dicom(tmp_path / "blank.dcm", np.full((H, W), 7, np.uint16), "P1", "L", "CC")
    item = LoadMammogramd("image")({"image": str(path)})
    with pytest.raises(ImageFileError, match=r"blank\.dcm.*no breast tissue"):
        BreastCropd("image")(item)


def test_resize_rejects_a_bad_size():
    with pytest.raises(ValueError, match="spatial_size"):
        ResizeWithBoxesd("image", spatial_size=(0, 10))


def test_factor_from_list_draws_only_listed_factors():
    image = torch.arange(10.0).reshape(1, 2, 5)
    contrast = RandFactorFromListd("image", "contrast", [0.4, 0.8, 1.5], prob=1.0)
    contrast.set_random_state(0)
    seen = set()
    for _ in range(30):
        out = contrast({"image": image})["image"]
        factor = float((out - out.mean()).std() / (image - image.mean()).std())
        seen.add(round(factor, 4))
        assert float(out.mean()) == pytest.approx(float(image.mean()))  # contrast keeps the mean
    assert seen == {0.4, 0.8, 1.5}
    brightness = RandFactorFromListd("image", "brightness", [0.3, 0.7, 1.3], prob=0.0)
    assert torch.equal(brightness({"image": image})["image"], image)  # prob 0: untouched
    always = RandFactorFromListd("image", "brightness", [0.5], prob=1.0)
    assert torch.allclose(always({"image": image})["image"], image * 0.5)


def test_factor_array_and_dictionary_twins_draw_the_same_factors():
    image = torch.arange(10.0).reshape(1, 2, 5)
    array = RandFactorFromList("contrast", [0.4, 0.8, 1.5], prob=0.5).set_random_state(3)
    dictionary = RandFactorFromListd(["image", "other"], "contrast", [0.4, 0.8, 1.5], prob=0.5).set_random_state(3)
    changed = 0
    for _ in range(20):
        expected = array(image)
        out = dictionary({"image": image, "other": image + 1})
        assert torch.allclose(out["image"], expected)
        assert torch.allclose(out["other"] - 1, expected)  # one factor per item, applied to every key
        changed += not torch.equal(expected, image)
    assert 0 < changed < 20  # prob 0.5: some items changed, some not
    kept = array(image, randomize=False)
    assert torch.equal(kept, array(image, randomize=False))  # randomize=False reuses the last draw


@pytest.mark.parametrize(
    "kwargs, match",
    [({"kind": "gamma", "factors": [1.0]}, "kind"), ({"kind": "contrast", "factors": []}, "factors"),
     ({"kind": "contrast", "factors": [1.0], "prob": 2}, "prob")],
)  # fmt: skip
def test_factor_from_list_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandFactorFromListd("image", **kwargs)
