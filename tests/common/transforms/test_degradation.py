"""Tests of common.transforms.degradation: bicubic LR simulation and its dictionary twin."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from common.transforms import BicubicDegrade, BicubicDegraded, crop_to_multiple


def test_crop_to_multiple():
    assert crop_to_multiple(torch.zeros(3, 10, 13), 4).shape == (3, 8, 12)


def test_degrade_shape_range_and_constant():
    hr = torch.rand(3, 37, 41)
    lr = BicubicDegrade(4)(hr)
    assert lr.shape == (3, 9, 10) and lr.min() >= 0 and lr.max() <= 1
    flat = torch.full((3, 18, 18), 0.3)
    assert torch.allclose(BicubicDegrade(9)(flat), torch.full((3, 2, 2), 0.3), atol=1e-5)
    assert BicubicDegrade("16")(np.random.rand(3, 32, 32)).shape == (3, 2, 2)


def test_degrade_keeps_meta_and_scales_affine():
    hr = MetaTensor(torch.rand(3, 16, 16), meta={"filename_or_obj": "a.png"})
    lr = BicubicDegrade(4)(hr)
    assert isinstance(lr, MetaTensor) and lr.meta["filename_or_obj"] == "a.png"
    assert float(lr.affine[0, 0]) == 4.0


@pytest.mark.parametrize(("scale", "words"), [(1, "> 1"), (-4, "> 1"), ("x4", "number"), (2.5, "integer")])
def test_degrade_rejects_bad_scale(scale, words):
    with pytest.raises(ValueError, match=words):
        BicubicDegrade(scale)


def test_degrade_rejects_small_images():
    with pytest.raises(ValueError, match="too small for scale 16"):
        BicubicDegrade(16, min_lr_size=4)(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="expected a"):
        BicubicDegrade(2)(torch.rand(16, 16))


def test_dictionary_twin():
    data = {"image": torch.rand(3, 30, 30), "roi": torch.ones(1, 30, 30)}
    out = BicubicDegraded("image", scale=4, hr_key="label", crop_keys=["roi"])(data)
    assert out["image"].shape == (3, 7, 7)
    assert out["label"].shape == (3, 28, 28) and torch.equal(out["label"], data["image"][:, :28, :28])
    assert out["roi"].shape == (1, 28, 28)
    assert data["image"].shape == (3, 30, 30)  # input dict untouched
