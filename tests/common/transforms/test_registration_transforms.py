from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from common.transforms import (
    OASIS_FILE_STEMS,
    DropTrailingSingleton,
    DropTrailingSingletond,
    PairNamed,
    RandSyntheticPair,
    RandSyntheticPaird,
    SaveDeformationGridd,
    WarpImage,
    WarpImaged,
    deformation_grid,
    pair_name,
)


def test_pair_name_uses_subject_folders_for_oasis_files():
    assert "slice_norm" in OASIS_FILE_STEMS
    assert pair_name("a/OAS1_1/slice_norm.nii.gz", "b/OAS1_2/slice_norm.nii.gz") == "OAS1_1_to_OAS1_2"
    assert pair_name("x/moving.nii.gz", "y/fixed.png") == "moving_to_fixed"


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_warp_image_shifts_by_the_ddf_in_voxels(spatial_dims: int):
    image = torch.arange(float(8**spatial_dims)).reshape(1, *([8] * spatial_dims))
    ddf = torch.zeros(spatial_dims, *([8] * spatial_dims))
    ddf[0] = 1.0  # sample one voxel further along axis 0
    warped = WarpImage(mode="nearest", padding_mode="border")(image, ddf)
    assert torch.equal(warped[:, :-1], image[:, 1:])
    with pytest.raises(ValueError, match="spatial shape"):
        WarpImage()(image, ddf[:, :4])


def test_warp_imaged_keeps_meta_and_skips_missing_labels():
    moving = MetaTensor(
        torch.rand(1, 6, 6, generator=torch.Generator().manual_seed(0)), meta={"filename_or_obj": "m.nii.gz"}
    )
    data = {"moving": moving, "pred": torch.zeros(2, 6, 6)}
    out = WarpImaged(["moving", "label"], output_keys=["warped", "warped_label"], mode=["bilinear", "nearest"],
                     allow_missing_keys=True)(data)  # fmt: skip
    # a zero field through grid_sample is the identity up to float32 rounding of the grid (seen: 1.2e-7)
    assert torch.allclose(out["warped"], moving, atol=1e-6) and "warped_label" not in out
    assert out["warped"].meta["filename_or_obj"] == "m.nii.gz"
    with pytest.raises(KeyError, match="label"):
        WarpImaged(["label"])(data)


def test_pair_named_renames_meta():
    moving = MetaTensor(torch.rand(1, 4, 4), meta={"filename_or_obj": "/d/OAS1_1/slice_norm.nii.gz"})
    fixed = MetaTensor(torch.rand(1, 4, 4), meta={"filename_or_obj": "/d/OAS1_2/slice_norm.nii.gz"})
    out = PairNamed(keys=["image"])({"image": moving, "fixed": fixed})
    assert out["image"].meta["filename_or_obj"].endswith("OAS1_1_to_OAS1_2")
    assert list(out["image"].meta["spatial_shape"]) == [4, 4]


def test_deformation_grid_and_png(tmp_path):
    grid = deformation_grid(torch.zeros(2, 8, 10), spacing=4, upsample=2)
    assert grid.shape == (16, 20) and grid.dtype == np.uint8 and grid.min() == 0 and grid.max() == 255
    assert deformation_grid(torch.zeros(3, 8, 8, 6)).shape == (32, 32)
    with pytest.raises(ValueError, match="displacement"):
        deformation_grid(torch.zeros(1, 8, 8))
    ddf = MetaTensor(torch.zeros(2, 8, 8), meta={"filename_or_obj": "/x/a_to_b"})
    SaveDeformationGridd(keys="pred", output_dir=tmp_path)({"pred": ddf})
    assert (tmp_path / "a_to_b_grid.png").is_file()


def test_drop_trailing_singleton_for_neurite_slices_and_plain_files():
    slice_ = MetaTensor(torch.rand(1, 5, 6, 1))
    assert DropTrailingSingleton(2)(slice_).shape == (1, 5, 6)
    assert DropTrailingSingleton(2)(torch.rand(1, 5, 6)).shape == (1, 5, 6)
    assert DropTrailingSingleton(3)(torch.rand(1, 5, 6, 1)).shape == (1, 5, 6, 1)
    out = DropTrailingSingletond(["image", "label"], 2, allow_missing_keys=True)({"image": slice_})
    assert out["image"].shape == (1, 5, 6)


def test_synthetic_pair_deforms_image_and_labels_alike():
    fixed = torch.zeros(1, 32, 40)
    fixed[:, 8:24, 10:30] = 1.0
    pair = RandSyntheticPair(amplitude=(0.05, 0.05), gamma=0.0, noise=0.0)
    pair.set_random_state(0)
    moving, label = pair(fixed, fixed.clone())
    assert moving.shape == fixed.shape and not torch.equal(moving, fixed)
    assert torch.equal(label, moving.round()) or (label - moving).abs().mean() < 0.05
    still, none = RandSyntheticPair(amplitude=(0.0, 0.0), gamma=0.0, noise=0.0)(fixed)
    assert torch.allclose(still, fixed, atol=1e-5) and none is None
    with pytest.raises(ValueError, match="amplitude"):
        RandSyntheticPair(amplitude=(0.1, 0.0))


def test_synthetic_paird_replaces_the_moving_pair_only_with_its_probability():
    item = {"image": torch.rand(1, 16, 16), "fixed": torch.rand(1, 16, 16), "label": torch.zeros(1, 16, 16),
            "fixed_label": torch.ones(1, 16, 16)}  # fmt: skip
    never = RandSyntheticPaird(prob=0.0).set_random_state(0)(item)
    assert torch.equal(never["image"], item["image"])
    always = RandSyntheticPaird(prob=1.0, amplitude=(0.0, 0.0), gamma=0.0, noise=0.0).set_random_state(0)(item)
    assert torch.allclose(always["image"], item["fixed"], atol=1e-5) and torch.equal(
        always["label"], item["fixed_label"]
    )
