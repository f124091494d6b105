"""Colon CT readers: decathlon datalist split by patient, DICOM series checks, up-front volume checks."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from common.colon_ct_ops import RectumNotFoundError
from common.data import (
    COLON_CT_LAYOUT,
    COLON_SPLIT_FRACTIONS,
    DatasetLayoutError,
    ImageFileError,
    check_colon_datalist,
    colon_ct_datalist,
    colon_phantom,
    read_ct_volume,
    read_dicom_series,
    write_ct_dicom_series,
)


def _dataset(tmp_path: Path, patients: int = 6) -> Path:
    root = tmp_path / "ds"
    (root / "imagesTr").mkdir(parents=True)
    items = []
    for p in range(patients):
        for position in ("supine", "prone"):
            name = f"p{p}_{position}.nii.gz"
            items.append({"image": f"imagesTr/{name}", "label": f"labelsTr/{name}", "patient": f"p{p}"})
    (root / "dataset.json").write_text(json.dumps({"training": items, "test": [{"image": "imagesTr/x.nii.gz"}]}))
    return root


def test_datalist_keeps_both_positions_of_a_patient_in_one_split(tmp_path: Path):
    root = _dataset(tmp_path)
    splits = {s: colon_ct_datalist(root, s) for s in ("train", "val", "test")}
    assert [len(v) for v in splits.values()] == [8, 2, 2]  # 4 / 1 / 1 patients of 6, two scans each
    assert abs(sum(COLON_SPLIT_FRACTIONS) - 1) < 1e-9
    patients = {s: {i["patient"] for i in v} for s, v in splits.items()}
    assert not patients["train"] & patients["val"] and not patients["val"] & patients["test"]
    assert all(Path(i["image"]).is_absolute() and i["label"].startswith(str(root)) for i in splits["train"])
    assert len(colon_ct_datalist(root, "all")) == 12
    assert colon_ct_datalist(root, "unlabelled") == [{"image": str(root / "imagesTr/x.nii.gz"), "patient": "x"}]


def test_datalist_errors_name_the_folder_and_show_the_layout(tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match="no dataset.json") as info:
        colon_ct_datalist(tmp_path)
    assert str(tmp_path) in str(info.value) and COLON_CT_LAYOUT.splitlines()[0] in str(info.value)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetLayoutError, match="cannot read the datalist"):
        colon_ct_datalist(tmp_path)
    root = _dataset(tmp_path / "b")
    with pytest.raises(DatasetLayoutError, match="unknown split"):
        colon_ct_datalist(root, "holdout")


def test_dicom_series_reads_hu_in_z_order_with_its_spacing(tmp_path: Path):
    hu = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3) - 1000
    folder = write_ct_dicom_series(tmp_path / "s", hu, spacing=(2.0, 3.0, 5.0), positions=[10.0, 0.0, 5.0])
    volume, affine = read_dicom_series(folder)
    assert volume.shape == (4, 5, 3)
    # files were written at z = 10, 0, 5: sorted by position, slice 1 of the files comes first
    np.testing.assert_array_equal(volume[..., 0], hu[..., 1])
    np.testing.assert_array_equal(volume[..., 2], hu[..., 0])
    assert np.allclose(np.abs(np.diag(affine)[:3]), [2.0, 3.0, 5.0])
    again, _ = read_ct_volume(folder)
    np.testing.assert_array_equal(again, volume)


@pytest.mark.parametrize(
    ("positions", "rescale", "words"),
    [
        ([0.0, 5.0, 10.0, 20.0], True, "missing slices"),
        ([0.0, 5.0, 10.0, 17.0], True, "inconsistent slice spacing"),
        ([0.0, 5.0, 10.0, 15.0], False, "no HU rescale tags"),
    ],
)
def test_bad_dicom_series_stop_with_the_problem(tmp_path: Path, positions, rescale, words):
    folder = write_ct_dicom_series(
        tmp_path / "s", np.zeros((4, 4, 4), np.float32), positions=positions, rescale=rescale
    )
    with pytest.raises(ImageFileError, match=words) as info:
        read_dicom_series(folder)
    assert str(folder) in str(info.value)


def test_check_finds_mask_shape_mismatch_and_missing_rectum(tmp_path: Path):
    hu, mask = colon_phantom(0, "supine")
    affine = np.eye(4)
    nib.save(nib.Nifti1Image(hu, affine), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(mask, affine), tmp_path / "mask.nii.gz")
    item = {"image": str(tmp_path / "ct.nii.gz"), "label": str(tmp_path / "mask.nii.gz")}
    assert check_colon_datalist([item]) == [item]
    nib.save(nib.Nifti1Image(mask[:-4], affine), tmp_path / "mask.nii.gz")
    with pytest.raises(ImageFileError, match="differs") as info:
        check_colon_datalist([item])
    assert str(tmp_path / "mask.nii.gz") in str(info.value)
    no_air = hu.copy()
    no_air[..., :10][mask[..., :10] > 0] = 40.0  # the rectum filled with soft tissue
    nib.save(nib.Nifti1Image(no_air, affine), tmp_path / "ct.nii.gz")
    with pytest.raises(RectumNotFoundError, match="rectum not found") as info:
        check_colon_datalist([item], label_key=None)
    assert str(tmp_path / "ct.nii.gz") in str(info.value)
