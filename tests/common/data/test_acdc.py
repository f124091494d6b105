from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from common.data import (
    ACDC_CLASS_NAMES,
    ACDC_LAYOUT,
    DatasetLayoutError,
    acdc_cases,
    acdc_subset_dir,
    acdc_volume_datalist,
    read_info_cfg,
)


def _patient(root: Path, number: int, ed: int = 1, es: int = 9, labels: bool = True) -> None:
    folder = root / f"patient{number:03d}"
    folder.mkdir(parents=True)
    (folder / "Info.cfg").write_text(f"ED: {ed}\nES: {es}\nGroup: NOR\nHeight: 180.0\nNbFrame: 20\nWeight: 80.0\n")
    for frame in (ed, es):
        stem = folder / f"patient{number:03d}_frame{frame:02d}"
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.int16), np.eye(4)), f"{stem}.nii.gz")
        if labels:
            nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), np.uint8), np.eye(4)), f"{stem}_gt.nii.gz")


def test_reads_both_layouts(tmp_path: Path):
    for n in range(1, 5):
        _patient(tmp_path / "training", n)
    cases = acdc_cases(tmp_path)
    assert len(cases) == 8 and {c["phase"] for c in cases} == {"ED", "ES"}
    assert cases[1]["image"].endswith("patient001_frame09.nii.gz") and cases[1]["label"].endswith("_gt.nii.gz")
    other = tmp_path / "release"
    _patient(other / "database" / "training", 1)
    assert acdc_subset_dir(other) == other / "database" / "training"


def test_splits_are_by_patient(tmp_path: Path):
    for n in range(1, 21):
        _patient(tmp_path / "training", n)
    parts = {s: acdc_volume_datalist(tmp_path, s) for s in ("train", "val", "test")}
    assert [len(v) // 2 for v in parts.values()] == [13, 2, 5]
    patients = [{c["patient"] for c in v} for v in parts.values()]
    assert not patients[0] & patients[2] and not patients[0] & patients[1]
    assert len(acdc_volume_datalist(tmp_path, "all")) == 40
    with pytest.raises(ValueError, match="split must be one of"):
        acdc_volume_datalist(tmp_path, "validation")


def test_layout_errors_name_the_path(tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match="does not exist") as info:
        acdc_cases(tmp_path / "missing")
    assert ACDC_LAYOUT.strip() in str(info.value)  # the expected layout is printed
    assert ACDC_CLASS_NAMES == ("background", "RV", "Myo", "LV")
    with pytest.raises(DatasetLayoutError, match="has no 'training/' folder"):
        acdc_cases(tmp_path)
    (tmp_path / "training").mkdir()
    with pytest.raises(DatasetLayoutError, match="holds no patientNNN folder"):
        acdc_cases(tmp_path)
    _patient(tmp_path / "training", 1, labels=False)
    with pytest.raises(DatasetLayoutError, match="label file is missing"):
        acdc_cases(tmp_path)
    assert len(acdc_cases(tmp_path, require_labels=False)) == 2
    with pytest.raises(DatasetLayoutError, match="point annotation file is missing"):
        acdc_cases(tmp_path, require_labels=False, require_points=True)


def test_info_cfg_without_frames(tmp_path: Path):
    (tmp_path / "Info.cfg").write_text("Group: NOR\n")
    with pytest.raises(DatasetLayoutError, match="no integer 'ED:'"):
        read_info_cfg(tmp_path / "Info.cfg")
