"""Tests of common.image_io: whole-file image reading with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from common.data import ImageFileError
from common.image_io import NIFTI_SUFFIXES, RASTER_SUFFIXES, image_suffix, read_image_array


def _png(path: Path, shape=(16, 16)) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8), "RGB").save(path)
    return path


def _nii(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return path


def test_image_suffix_counts_nii_gz_as_one():
    assert image_suffix("a/B.NII.GZ") == ".nii.gz" and image_suffix(Path("x.Png")) == ".png"
    assert ".nii.gz" in NIFTI_SUFFIXES and ".tif" in RASTER_SUFFIXES


def test_read_image_array_png_and_nifti(tmp_path: Path):
    assert read_image_array(_png(tmp_path / "a.png")).shape == (16, 16, 3)
    assert read_image_array(_nii(tmp_path / "v.nii.gz", np.zeros((4, 5, 6), np.float32))).shape == (4, 5, 6)


@pytest.mark.parametrize("suffix", [".png", ".nii.gz"])
def test_truncated_file_is_named(tmp_path: Path, suffix: str):
    path = _png(tmp_path / "a.png") if suffix == ".png" else _nii(tmp_path / "v.nii.gz", np.ones((8, 8, 8), np.float32))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ImageFileError, match="cannot read image") as info:
        read_image_array(path)
    assert info.value.path == str(path)


def test_missing_and_unsupported_files(tmp_path: Path):
    with pytest.raises(ImageFileError, match="does not exist"):
        read_image_array(tmp_path / "nope.png")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ImageFileError, match="unsupported file type"):
        read_image_array(tmp_path / "x.txt")
