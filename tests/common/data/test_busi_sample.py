from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import busi_datalist, check_image_datalist, corrupt_ultrasound, ood_datalists, write_busi_sample
from common.data.busi_sample import DEVICES, render_breast_phantom, render_carotid_phantom, render_digit

SMALL = {"us_per_class": 4, "pocus_train_per_class": 3, "pocus_test_per_class": 3, "val_per_class": (1, 1),
         "num_digits": 5, "num_carotid": 4}  # fmt: skip


def test_sample_layout_is_readable_and_deterministic(tmp_path: Path):
    a = write_busi_sample(tmp_path / "a", seed=0, **SMALL)
    b = write_busi_sample(tmp_path / "b", seed=0, **SMALL)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    for rel in files:
        assert np.array_equal(np.asarray(Image.open(a / rel)), np.asarray(Image.open(b / rel)))
    test = busi_datalist(a, "test")
    assert len(test) == 9 and len(busi_datalist(a, "train")) + len(busi_datalist(a, "val")) == 21
    splits = json.loads((a / "splits.json").read_text())
    assert set(splits["calibration"]) <= set(splits["train"]) and len(splits["calibration"]) == 6
    sets = ood_datalists(a / "ood")
    assert {k: len(v) for k, v in sets.items()} == {"cca": 4, "corrupt_pocus": 9, "mnist": 5}
    check_image_datalist(busi_datalist(a, "all") + sum(sets.values(), []), image_channels=1, progress=False)
    with pytest.raises(FileExistsError):
        write_busi_sample(a, **SMALL)


def test_classes_differ_as_birads_descriptors_say():
    rng = np.random.default_rng(0)
    normal_img, normal_mask = render_breast_phantom("normal", "us", rng)
    assert normal_img.shape == (180, 180) and normal_img.dtype == np.uint8 and not normal_mask.any()
    aspect = {}
    for kind in ("benign", "malignant"):
        ratios, contrast = [], []
        for _ in range(6):
            image, mask = render_breast_phantom(kind, "us", rng)
            rows, cols = np.nonzero(mask)
            ratios.append((np.ptp(cols) + 1) / (np.ptp(rows) + 1))
            contrast.append(image[mask > 0].mean() < image[mask == 0].mean())
        aspect[kind] = np.mean(ratios)
        assert all(contrast)  # hypoechoic masses
    assert aspect["benign"] > 1.2 > aspect["malignant"]  # wider-than-tall vs taller-than-wide
    with pytest.raises(ValueError):
        render_breast_phantom("cyst", "us", rng)
    with pytest.raises(ValueError):
        render_breast_phantom("benign", "ct", rng)
    assert set(DEVICES) == {"us", "pocus"}


def test_ood_images():
    rng = np.random.default_rng(1)
    digit = render_digit(np.eye(8) * 16, rng).astype(float)
    assert digit.shape == (180, 180)
    rows, cols = np.mgrid[0:180, 0:180]
    diagonal = np.abs(rows - cols) < 10
    assert digit[diagonal].mean() > digit[~diagonal].mean() + 20  # the ink is an echogenic structure
    # speckled like the ID phantoms: no bright-on-black MNIST histogram
    breast, _ = render_breast_phantom("normal", "us", rng)
    assert abs(digit.mean() - breast.mean()) < 40 and (digit == 0).mean() < 0.1
    with pytest.raises(ValueError):
        render_digit(np.eye(8), rng, "ct")
    carotid = render_carotid_phantom(rng)
    assert carotid.shape == (180, 180) and carotid.std() > 10
    image, _ = render_breast_phantom("benign", "pocus", rng)
    corrupted = corrupt_ultrasound(image, rng)
    assert corrupted.shape == image.shape and corrupted.dtype == np.uint8
    assert np.abs(corrupted.astype(float) - image).mean() > 5
