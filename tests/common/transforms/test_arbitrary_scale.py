from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from common.transforms import (
    ArbitraryScaleDegrade,
    ArbitraryScaleDegraded,
    RandArbitraryScalePatch,
    RandArbitraryScalePatchd,
    SaveSuperResolutiond,
    degrade_to_size,
    gaussian_blur,
)


def test_gaussian_blur_preserves_mean_and_smooths():
    torch.manual_seed(0)
    image = torch.rand(3, 20, 20)
    blurred = gaussian_blur(image, 1.0)
    assert blurred.shape == image.shape
    assert blurred.std() < image.std()
    torch.testing.assert_close(gaussian_blur(torch.full((1, 2, 2), 0.3), 2.0), torch.full((1, 2, 2), 0.3))
    assert gaussian_blur(image, 0) is image


def test_degrade_to_size():
    lr = degrade_to_size(torch.rand(3, 40, 40), (10, 13), 1.0)
    assert lr.shape == (3, 10, 13) and lr.min() >= 0 and lr.max() <= 1


@pytest.mark.parametrize(("scale", "lr", "hr"), [(2, 24, 48), (3.5, 13, 46), (8, 6, 48)])
def test_arbitrary_scale_degrade_sizes(scale, lr, hr):
    image = torch.rand(3, 48, 50)
    degrade = ArbitraryScaleDegrade(scale)
    assert degrade(image).shape[-2] == lr
    assert degrade.hr_crop(image).shape[-2] == hr


def test_arbitrary_scale_degraded_keeps_meta_and_baseline():
    image = MetaTensor(torch.rand(3, 32, 32), meta={"filename_or_obj": "/x/tile_007.png"})
    out = ArbitraryScaleDegraded("image", scale=4)({"image": image})
    assert out["image"].shape == (3, 8, 8) and out["image"].meta["filename_or_obj"].endswith("tile_007.png")
    assert out["label"].shape == out["bicubic"].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="scale must be a number > 1"):
        ArbitraryScaleDegraded("image", scale="x")
    with pytest.raises(ValueError, match="too small"):
        ArbitraryScaleDegrade(8).hr_crop(torch.rand(3, 4, 4))


def test_random_patch_pairs_are_consistent():
    image = torch.rand(3, 64, 64)
    sampler = RandArbitraryScalePatch(patch_size=8, scale_min=1, scale_max=4, num_samples=50, blur_sigma=0.5)
    sampler.set_random_state(0)
    lr, coord, cell, rgb = sampler(image)
    assert lr.shape == (3, 8, 8) and coord.shape == cell.shape == (50, 2) and rgb.shape == (50, 3)
    crop = sampler._crop
    assert 8 <= crop <= 32 and torch.allclose(cell, torch.full_like(cell, 2 / crop))
    # every RGB target is the crop's pixel at its coordinate
    top, left = sampler._corner
    rows = ((coord[:, 0] + 1) * crop / 2 - 0.5).round().long()
    cols = ((coord[:, 1] + 1) * crop / 2 - 0.5).round().long()
    torch.testing.assert_close(rgb, image[:, top + rows, left + cols].t())
    with pytest.raises(ValueError, match="smaller than the largest training crop"):
        sampler(torch.rand(3, 20, 20))
    with pytest.raises(ValueError, match="scale_min"):
        RandArbitraryScalePatch(scale_min=3, scale_max=2)


def test_random_patch_dict_is_seeded():
    image = torch.rand(3, 64, 64)

    def sample(seed):
        t = RandArbitraryScalePatchd("image", patch_size=8, num_samples=20, scale_max=4)
        t.set_random_state(seed)
        return t({"image": image})

    a, b, c = sample(1), sample(1), sample(2)
    assert set(a) == {"image", "coord", "cell", "label"}
    torch.testing.assert_close(a["coord"], b["coord"])
    assert not torch.equal(a["coord"], c["coord"])


def test_save_super_resolution_writes_image_and_figure(tmp_path):
    lr = MetaTensor(torch.rand(3, 10, 12), meta={"filename_or_obj": str(tmp_path / "case.png")})
    pred = torch.rand(3, 20, 24)
    saver = SaveSuperResolutiond("pred", output_dir=str(tmp_path / "out"), hr_key="label", crop=16)
    saver({"pred": pred, "image": lr, "label": torch.rand(3, 20, 24)})
    sr = np.asarray(Image.open(tmp_path / "out" / "case_sr.png"))
    assert sr.shape == (20, 24, 3)
    assert np.abs(sr / 255.0 - pred.permute(1, 2, 0).numpy()).max() <= 0.5 / 255 + 1e-6
    assert (tmp_path / "out" / "case_comparison.png").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["case_comparison.png", "case_sr.png"]
