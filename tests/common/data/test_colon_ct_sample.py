"""CT colonography phantoms: HU classes, prone/supine twins, determinism, the decathlon layout."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from common.data import COLON_PHANTOM_SHAPE, COLON_PHANTOM_SPACING, colon_phantom, write_colon_ct_sample


def test_phantom_holds_the_tissues_and_the_colon_in_the_lower_slices():
    hu, mask = colon_phantom([0, 1], "supine")
    assert hu.shape == mask.shape == COLON_PHANTOM_SHAPE and hu.dtype == np.float32
    assert hu[0, 0, 0] < -900  # air around the body
    assert (hu > 600).any()  # bone
    lumen = hu[mask > 0]
    assert np.median(lumen) < -600 and (lumen > 300).any()  # air lumen with opacified fluid
    depth = np.flatnonzero(mask.any((0, 1)))
    assert depth[0] == 0 and depth[-1] < COLON_PHANTOM_SHAPE[2] - 5  # rectum in slice 0, colon-free top slices
    assert 0.005 < mask.mean() < 0.05


def test_prone_and_supine_twins_pool_fluid_on_opposite_sides():
    for position, sign in (("supine", -1), ("prone", 1)):
        hu, mask = colon_phantom([0, 2], position)
        fluid = (hu > 250) & (mask > 0)
        air = (hu < -800) & (mask > 0)
        y = np.arange(hu.shape[1])[None, :, None]
        offset = (y * fluid).sum() / fluid.sum() - (y * air).sum() / air.sum()
        assert sign * offset > 0.5, position  # supine: fluid posterior (lower y); prone: anterior


def test_phantoms_are_deterministic_and_the_sample_is_in_the_decathlon_layout(tmp_path: Path):
    a, _ = colon_phantom([0, 0], "prone")
    b, _ = colon_phantom([0, 0], "prone")
    np.testing.assert_array_equal(a, b)
    root = write_colon_ct_sample(tmp_path / "sample", num_patients=2)
    datalist = json.loads((root / "dataset.json").read_text())
    assert [i["patient"] for i in datalist["training"]] == ["ctc_000"] * 2 + ["ctc_001"] * 2
    first = datalist["training"][0]
    image = nib.load(root / first["image"])
    assert image.get_data_dtype() == np.int16 and np.allclose(np.diag(image.affine)[:3], COLON_PHANTOM_SPACING)
    assert nib.load(root / first["label"]).shape == image.shape
    with pytest.raises(FileExistsError):
        write_colon_ct_sample(root, num_patients=1)
    with pytest.raises(ValueError, match="position"):
        colon_phantom(0, "lateral")
