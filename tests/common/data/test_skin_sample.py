"""Skin samples: the ISIC and class-folder layouts the readers accept, determinism, and the ABCD signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.data import (
    CUTANEOUS_CLASSES,
    busi_datalist,
    check_isic_datalist,
    clinical_image,
    dermoscopy_lesion,
    isic_datalist,
    write_cutaneous_sample,
    write_isic_sample,
    write_skin_sample,
)


def test_skin_sample_is_read_by_both_readers(tmp_path: Path):
    root = write_skin_sample(tmp_path / "sample")
    items = isic_datalist(root / "isic", "all", require_masks=True)
    assert len(items) > 200 and {i["label"] for i in items} >= {0, 1, 2, 4, 8}
    check_isic_datalist(items[:20], progress=False)
    clinical = busi_datalist(root / "cutaneous", "all", classes=CUTANEOUS_CLASSES, ignore_dirs=())
    assert len(clinical) == 200 and {i["label"] for i in clinical} == {0, 1, 2, 3}


def test_writers_are_deterministic_and_atomic(tmp_path: Path):
    a = write_isic_sample(tmp_path / "a", seed=1, counts_2019={"MEL": 2, "NV": 2}, patients_2020=1)
    b = write_isic_sample(tmp_path / "b", seed=1, counts_2019={"MEL": 2, "NV": 2}, patients_2020=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    with pytest.raises(FileExistsError):
        write_cutaneous_sample(a)
    c = write_cutaneous_sample(tmp_path / "c", per_class=2, size=64)
    assert sorted(p.name for p in c.iterdir()) == sorted(CUTANEOUS_CLASSES)


def test_melanoma_differs_in_each_abcd_cue():
    rng = np.random.default_rng(0)
    ratios = {"MEL": [], "NV": []}
    for lesion in ratios:
        for _ in range(30):
            image, mask = dermoscopy_lesion(rng, 96, lesion)
            assert image.shape == (96, 96, 3) and image.dtype == np.uint8 and mask.any()
            ratios[lesion].append(mask.mean())
    assert np.mean(ratios["MEL"]) > 1.5 * np.mean(ratios["NV"])  # diameter
    # the same cues switched on by hand: a larger, more colourful lesion with the same seed
    plain, _ = dermoscopy_lesion(np.random.default_rng(5), 96, "NV", dict.fromkeys("ABCD", False))
    coloured, _ = dermoscopy_lesion(np.random.default_rng(5), 96, "NV", {"A": False, "B": False, "C": True, "D": False})
    assert np.abs(plain.astype(int) - coloured.astype(int)).max() > 60


def test_clinical_image_classes_and_errors():
    rng = np.random.default_rng(0)
    for disease in CUTANEOUS_CLASSES:
        image = clinical_image(rng, 64, disease)
        assert image.shape == (64, 64, 3) and image.std() > 2
    with pytest.raises(ValueError, match="disease must be one of"):
        clinical_image(rng, 64, "eczema")
