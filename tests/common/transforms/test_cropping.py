"""Square centre crop (array and dictionary versions)."""

from __future__ import annotations

import pytest
import torch

from common.transforms import SquareCenterCrop, SquareCenterCropd


def test_crops_the_centred_square():
    image = torch.arange(3 * 4 * 6, dtype=torch.float32).reshape(3, 4, 6)
    out = SquareCenterCrop()(image)
    assert out.shape == (3, 4, 4) and torch.equal(out, image[:, :, 1:5])
    with pytest.raises(ValueError, match="channel-first 2D"):
        SquareCenterCrop()(torch.zeros(4, 6))


def test_dictionary_version_crops_image_and_mask_alike():
    data = {"image": torch.rand(3, 10, 6), "mask": torch.rand(1, 10, 6)}
    out = SquareCenterCropd(["image", "mask"])(data)
    assert out["image"].shape == (3, 6, 6) and out["mask"].shape == (1, 6, 6)
    assert torch.equal(out["mask"], data["mask"][:, 2:8])
    with pytest.raises(ValueError, match="different spatial sizes"):
        SquareCenterCropd(["image", "mask"])({"image": torch.rand(3, 10, 6), "mask": torch.rand(1, 8, 6)})
