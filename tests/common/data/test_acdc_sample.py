from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from common.data import acdc_cases, read_info_cfg, write_acdc_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_acdc_sample(tmp_path_factory.mktemp("acdc") / "ACDC", num_patients=3, image_size=64, num_slices=6)


def test_layout_is_acdc(sample: Path):
    patients = sorted(p.name for p in (sample / "training").iterdir())
    assert patients == ["patient001", "patient002", "patient003"]
    info = read_info_cfg(sample / "training" / "patient001" / "Info.cfg")
    assert info["ED"] == "1" and 8 <= int(info["ES"]) <= 15 and {"Group", "Height", "NbFrame", "Weight"} <= set(info)
    names = sorted(p.name for p in (sample / "training" / "patient001").iterdir())
    assert names == sorted(["Info.cfg", "patient001_frame01.nii.gz", "patient001_frame01_gt.nii.gz",
                            f"patient001_frame{int(info['ES']):02d}.nii.gz",
                            f"patient001_frame{int(info['ES']):02d}_gt.nii.gz"])  # fmt: skip
    assert len(acdc_cases(sample)) == 6  # the reader accepts it


def test_volumes_look_like_short_axis_cine(sample: Path):
    for case in acdc_cases(sample):
        image, label = nib.load(case["image"]), nib.load(case["label"])
        img, lab = np.asarray(image.dataobj), np.asarray(label.dataobj)
        assert img.dtype == np.int16 and lab.dtype == np.uint8 and img.shape == lab.shape
        assert img.shape[:2] == (64, 64) and 5 <= img.shape[2] <= 7
        assert np.allclose(image.header.get_zooms(), (6.0, 6.0, 10.0))
        assert set(np.unique(lab)) == {0, 1, 2, 3}
        assert (lab[..., -1] == 1).sum() == 0, "the RV is absent on the most apical slice"
        assert all((lab[..., 0] == c).sum() > 20 for c in (1, 2, 3)), "every class is visible at the base"
        assert img[lab == 3].mean() > 1.8 * img[lab == 2].mean(), "blood pool brighter than myocardium"
        # distractors: bright pixels of blood-pool intensity outside the heart
        heart = lab > 0
        bright = img > np.percentile(img[lab == 3], 25)
        assert (bright & ~heart).sum() > 50


def test_es_cavity_is_smaller(sample: Path):
    ed, es = acdc_cases(sample)[:2]
    lv_ed = (np.asarray(nib.load(ed["label"]).dataobj) == 3).sum()
    lv_es = (np.asarray(nib.load(es["label"]).dataobj) == 3).sum()
    assert lv_es < 0.8 * lv_ed


def test_deterministic_and_refuses_overwrite(sample: Path, tmp_path: Path):
    again = write_acdc_sample(tmp_path / "ACDC", num_patients=3, image_size=64, num_slices=6)
    for a, b in zip(acdc_cases(sample), acdc_cases(again)):
        assert np.array_equal(np.asarray(nib.load(a["image"]).dataobj), np.asarray(nib.load(b["image"]).dataobj))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_acdc_sample(again, num_patients=1)
    write_acdc_sample(again, num_patients=1, image_size=64, overwrite=True)
    assert len(list((again / "training").iterdir())) == 1
