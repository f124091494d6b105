from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from common.data import (
    OASIS_FILES,
    OASIS_LAYOUT,
    OASIS_SPLITS,
    DatasetError,
    DatasetLayoutError,
    ImageFileError,
    check_registration_datalist,
    oasis_pair_datalist,
    oasis_pairs,
    oasis_split,
    oasis_subjects,
)


def _write(root, subjects, shape=(8, 10, 1), value=None):
    rng = np.random.default_rng(0)
    for s in subjects:
        folder = root / s
        folder.mkdir(parents=True, exist_ok=True)
        image = rng.random(shape).astype(np.float32) if value is None else np.full(shape, value, np.float32)
        nib.save(nib.Nifti1Image(image, np.eye(4)), folder / "slice_norm.nii.gz")
        nib.save(nib.Nifti1Image((image * 3).astype(np.int16), np.eye(4)), folder / "slice_seg24.nii.gz")
    return root


def test_authors_split_and_pairing_on_414_subjects():
    subjects = [f"s{i}" for i in range(414)]
    train, val, test = (oasis_split(subjects, s, 2) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == OASIS_SPLITS[2]["sizes"] == (201, 12, 201)
    assert len(oasis_pairs(train, "all")) == 40200 and len(oasis_pairs(val, "both")) == 22
    train3, val3, test3 = (oasis_split(subjects, s, 3) for s in ("train", "val", "test"))
    assert (len(train3), len(val3), len(test3)) == (384, 10, 20)
    assert len(oasis_pairs(train3, "both")) == 766 and len(oasis_pairs(val3, "forward")) == 9
    assert len(oasis_pairs(test3, "forward")) == 19
    assert oasis_pairs(["a", "b", "c"], "both") == [("a", "b"), ("b", "c"), ("c", "b"), ("b", "a")]
    with pytest.raises(ValueError, match="pairing"):
        oasis_pairs(["a"], "random")
    with pytest.raises(ValueError, match="split"):
        oasis_split(subjects, "dev")


def test_small_collections_keep_two_held_out_subjects():
    subjects = [f"s{i}" for i in range(10)]
    assert [len(oasis_split(subjects, s)) for s in ("train", "val", "test")] == [3, 2, 5]
    assert oasis_split(subjects, "all") == subjects
    with pytest.raises(DatasetLayoutError, match="too few"):
        oasis_split(subjects[:4], "train")


def test_pair_datalist_reads_subjects_txt_order(tmp_path):
    names = [f"OASIS_OAS1_{i:04d}_MR1" for i in range(1, 11)]
    root = _write(tmp_path, names)
    (root / "subjects.txt").write_text("\n".join(reversed(names)))
    assert oasis_subjects(root) == list(reversed(names))
    items = oasis_pair_datalist(root, "val")
    assert items[0]["image"].endswith(f"{names[-4]}/{OASIS_FILES[2][0]}")
    assert items[0]["fixed_label"].endswith(f"{names[-5]}/slice_seg24.nii.gz")
    assert items[0]["pair"] == f"{names[-4]}_to_{names[-5]}"
    assert "label" not in oasis_pair_datalist(root, "val", label_set="none")[0]
    with pytest.raises(DatasetLayoutError, match="seg4"):
        oasis_pair_datalist(root, "val", label_set="seg4")
    assert "label" not in oasis_pair_datalist(root, "val", label_set="seg4", require_labels=False)[0]
    (root / names[3] / OASIS_FILES[2][0]).unlink()
    with pytest.raises(DatasetLayoutError, match=f"{names[3]}/{OASIS_FILES[2][0]}: subject image is missing"):
        oasis_pair_datalist(root, "val")  # never a silent drop of the damaged subject
    (root / "subjects.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="subject image is missing"):
        oasis_subjects(root)
    (root / "subjects.txt").write_text("OASIS_missing\n")
    with pytest.raises(DatasetLayoutError, match="missing"):
        oasis_subjects(root)


def test_missing_or_empty_dataset_names_the_path(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist") as info:
        oasis_subjects(tmp_path / "nope")
    assert OASIS_LAYOUT.splitlines()[0] in str(info.value)
    with pytest.raises(DatasetLayoutError, match="no subject"):
        oasis_subjects(tmp_path)


def test_check_registration_datalist(tmp_path):
    root = _write(tmp_path, ["a", "b"])
    item = {"image": str(root / "a/slice_norm.nii.gz"), "fixed": str(root / "b/slice_norm.nii.gz"),
            "label": str(root / "a/slice_seg24.nii.gz"), "fixed_label": str(root / "b/slice_seg24.nii.gz")}  # fmt: skip
    assert check_registration_datalist([item], spatial_dims=2) == [item]
    with pytest.raises(ImageFileError, match="expected a 3D image"):
        check_registration_datalist([item], spatial_dims=3)
    with pytest.raises(DatasetError, match="empty"):
        check_registration_datalist([])
    _write(tmp_path, ["c"], shape=(8, 10, 6))
    volume = dict(item, fixed=str(root / "c/slice_norm.nii.gz"))
    with pytest.raises(ImageFileError, match="same dimensionality") as info:
        check_registration_datalist([volume])
    assert str(root / "c/slice_norm.nii.gz") in str(info.value)
    _write(tmp_path, ["d"], shape=(8, 12, 1))
    with pytest.raises(ImageFileError, match="differs"):
        check_registration_datalist([dict(item, fixed=str(root / "d/slice_norm.nii.gz"))])
    _write(tmp_path, ["e"], value=0.0)
    with pytest.raises(ImageFileError, match="blank"):
        check_registration_datalist([dict(item, fixed=str(root / "e/slice_norm.nii.gz"))])
    with pytest.raises(ImageFileError, match="label shape"):
        check_registration_datalist([dict(item, label=str(root / "d/slice_seg24.nii.gz"))])
