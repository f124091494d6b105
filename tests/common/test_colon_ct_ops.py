"""Tests of common.colon_ct_ops: the HU mixture fitted by EM, its thresholds, the body mask, the rectum."""

from __future__ import annotations

import numpy as np
import pytest

from common.colon_ct_ops import (
    EM_INITIAL_MEANS,
    EM_MEAN_RANGES,
    HUMixture,
    RectumNotFoundError,
    body_mask,
    detect_rectum,
    em_thresholds,
    fit_hu_mixture,
)
from common.data import DatasetError


def test_em_thresholds_fall_between_the_air_fat_and_muscle_fluid_modes():
    rng = np.random.default_rng(0)
    hu = np.concatenate(
        [rng.normal(-1000, 20, 5000), rng.normal(-100, 20, 3000), rng.normal(40, 20, 3000), rng.normal(500, 40, 500)]
    )
    mixture = fit_hu_mixture(hu)
    assert isinstance(mixture, HUMixture) and len(EM_INITIAL_MEANS) == len(EM_MEAN_RANGES) == 4
    np.testing.assert_allclose(mixture.means, [-1000, -100, 40, 500], atol=15)
    t1, t2 = em_thresholds(mixture)
    assert -1000 < t1 < -100 and 40 < t2 < 500
    posterior = mixture.lumen_posterior(np.array([-1000.0, -100.0, 40.0, 500.0]))
    assert posterior[0] > 0.99 and posterior[3] > 0.99 and posterior[1] < 0.01 and posterior[2] < 0.01


def test_rectum_is_the_disk_of_air_in_the_lowest_slice():
    hu = np.full((40, 40, 10), 40.0)
    hu[:2], hu[-2:] = -1000.0, -1000.0  # air outside the body
    yy, xx = np.mgrid[:40, :40]
    hu[(xx - 20) ** 2 + (yy - 20) ** 2 <= 16, 0] = -1000.0  # the rectum, slice 0
    hu[5:7, 5:30, 0] = -1000.0  # a thin air streak: not disk-like
    z, disk = detect_rectum(hu, -500.0)
    assert z == 0 and disk[20, 20] and not disk[6, 10] and 40 <= disk.sum() <= 52
    assert body_mask(hu, -500.0)[20, 20, 5]
    hu[..., 0][disk] = 40.0
    with pytest.raises(RectumNotFoundError, match="rectum not found") as info:
        detect_rectum(hu, -500.0, source="ct.nii.gz")
    assert "ct.nii.gz" in str(info.value)


def test_rectum_not_found_is_a_dataset_error():
    assert issubclass(RectumNotFoundError, DatasetError)  # check_data stops with it like any other dataset problem
    with pytest.raises(ValueError, match="non-empty volume of finite values"):
        fit_hu_mixture(np.array([0.0, np.nan]))
