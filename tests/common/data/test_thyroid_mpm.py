"""Unit tests of common.data.thyroid_mpm (the reader, the raw-data conversion), on the sample where it helps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from common.data import (
    MPM_CLASSES,
    MPM_LAYOUT,
    MPM_RAW_LAYOUT,
    POLARISATION_ANGLES,
    DatasetLayoutError,
    ImageFileError,
    average_polarisation,
    check_mpm_datalist,
    mpm_datalist,
    mpm_regions,
    scale_modality,
    write_mpm_sample,
)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_mpm_sample(tmp_path_factory.mktemp("mpm") / "data", seed=3, size=96, sections=(3, 4),
                            rois_per_section=(2, 3))  # fmt: skip


def test_sample_layout_and_section_split(sample):
    regions = mpm_regions(sample)
    assert {r["label"] for r in regions} == {0, 1} and MPM_CLASSES == ("FA", "FTC") and "sections.csv" in MPM_LAYOUT
    parts = {s: mpm_datalist(sample, s) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == len(regions)
    sections = [{i["section"] for i in p} for p in parts.values()]
    assert not (sections[0] & sections[1]) and not (sections[0] & sections[2]) and not (sections[1] & sections[2])
    check_mpm_datalist(regions, image_size=96)
    with pytest.raises(ImageFileError, match="differs from the expected"):
        check_mpm_datalist(regions, image_size=128)
    with pytest.raises(DatasetLayoutError, match="unknown split"):
        mpm_datalist(sample, "holdout")


def test_missing_sections_table(tmp_path):
    with pytest.raises(DatasetLayoutError, match="sections.csv is missing"):
        mpm_regions(tmp_path)


def test_polarisation_average_skips_180(tmp_path):
    assert POLARISATION_ANGLES[-1] == 180 and "TPEF.tif" in MPM_RAW_LAYOUT
    for deg in POLARISATION_ANGLES:
        value = 100.0 if deg == 180 else float(deg)
        Image.fromarray(np.full((8, 8), value, np.float32)).save(tmp_path / f"BSHG_pol_lin_{deg}.tif")
    assert np.allclose(average_polarisation(tmp_path, "BSHG"), 80.0)  # mean of 0..160 step 20


def test_scale_modality_range():
    out = scale_modality(np.linspace(0, 10, 100).reshape(10, 10))
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    with pytest.raises(ValueError, match="constant"):
        scale_modality(np.ones((4, 4)))


def test_convert_mpm_rois_names_the_missing_tpef(tmp_path):
    from common.data import convert_mpm_rois

    roi = tmp_path / "raw" / "s1" / "r1"
    for modality in ("BSHG", "FSHG"):
        (roi / modality).mkdir(parents=True)
        for deg in POLARISATION_ANGLES:
            image = np.random.default_rng(deg).random((16, 16)).astype(np.float32)
            Image.fromarray(image).save(roi / modality / f"{modality}_pol_lin_{deg}.tif")
    with pytest.raises(DatasetLayoutError, match="TPEF image is missing") as info:
        convert_mpm_rois(tmp_path / "raw", tmp_path / "out", {"s1": "FA"})
    assert str(roi / "TPEF.tif") in str(info.value) and not (tmp_path / "out").exists()
    Image.fromarray(np.random.default_rng(9).random((16, 16)).astype(np.float32)).save(roi / "TPEF.tif")
    out = convert_mpm_rois(tmp_path / "raw", tmp_path / "out", {"s1": "FA"})
    assert np.asarray(Image.open(out / "s1" / "r1.png")).shape == (16, 16, 3)
