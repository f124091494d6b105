"""CT loading into channel-first MetaTensors in HU."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from common.data import ImageFileError
from common.transforms import LoadCTVolume, LoadCTVolumed


def test_nifti_loads_channel_first_with_its_affine(tmp_path: Path):
    affine = np.diag([2.0, 3.0, 4.0, 1.0])
    nib.save(nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 1000, affine), tmp_path / "ct.nii.gz")
    image = LoadCTVolume()(tmp_path / "ct.nii.gz")
    assert image.shape == (1, 2, 3, 4) and float(image[0, 0, 0, 0]) == -1000
    np.testing.assert_allclose(image.affine.numpy(), affine)
    d = LoadCTVolumed(keys=["image", "label"], allow_missing_keys=True)({"image": str(tmp_path / "ct.nii.gz")})
    assert d["image"].meta["filename_or_obj"] == str(tmp_path / "ct.nii.gz")
    with pytest.raises(ImageFileError, match="does not exist"):
        LoadCTVolume()(tmp_path / "missing.nii.gz")
