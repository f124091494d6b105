from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged

from common.data import ImageFileError, SliceDataset, expand_slices
from common.transforms import SelectSliced


def _volume(path: Path, depth: int) -> str:
    data = np.arange(6 * 5 * depth, dtype=np.float32).reshape(6, 5, depth)
    nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 10.0, 1.0])), str(path))
    return str(path)


def test_expand_slices_reads_depth_from_header(tmp_path: Path):
    vols = [{"image": _volume(tmp_path / "a.nii.gz", 3)}, {"image": _volume(tmp_path / "b.nii.gz", 2)}]
    slices = expand_slices(vols)
    assert [(Path(s["image"]).name, s["slice"]) for s in slices] == [
        ("a.nii.gz", 0), ("a.nii.gz", 1), ("a.nii.gz", 2), ("b.nii.gz", 0), ("b.nii.gz", 1)
    ]  # fmt: skip
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(ImageFileError, match="bad.nii.gz: cannot read the image header"):
        expand_slices([{"image": str(tmp_path / "bad.nii.gz")}])


def test_slice_dataset_yields_the_right_slices(tmp_path: Path):
    path = _volume(tmp_path / "a.nii.gz", 4)
    transform = Compose([LoadImaged("image", image_only=True), EnsureChannelFirstd("image"), SelectSliced("image")])
    ds = SliceDataset([{"image": path}], transform=transform, cache_rate=1.0, progress=False)
    assert len(ds) == 4
    volume = torch.as_tensor(np.asarray(nib.load(path).dataobj))
    for z in range(4):
        assert ds[z]["image"].shape == (1, 6, 5)
        assert torch.equal(ds[z]["image"][0].as_tensor(), volume[..., z])
