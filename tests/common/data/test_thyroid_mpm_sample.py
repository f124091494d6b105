"""Unit tests of common.data.thyroid_mpm_sample: deterministic phantoms whose class lies in the BSHG/FSHG relation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from common.data import MPM_CLASSES, mpm_phantom, write_mpm_sample

SMALL = {"size": 32, "sections": (1, 2), "rois_per_section": (1, 2)}


def test_phantom_is_deterministic():
    a = mpm_phantom(np.random.default_rng(0), 64)
    b = mpm_phantom(np.random.default_rng(0), 64)
    assert a.shape == (64, 64, 3) and np.array_equal(a, b)


def _zone_correlation(stack: np.ndarray) -> float:
    smooth = [ndimage.gaussian_filter(stack[..., c], 6).ravel() for c in (0, 1)]
    return float(np.corrcoef(*smooth)[0, 1])


def test_phantom_class_lies_in_the_bshg_fshg_relation():
    for seed in range(3):
        fa = mpm_phantom(np.random.default_rng(seed), 96, co_located=True)
        ftc = mpm_phantom(np.random.default_rng(seed), 96, co_located=False)
        # same scene: FSHG and TPEF do not depend on the class, only where the BSHG puncta sit relative to the fibres
        assert np.array_equal(fa[..., 1:], ftc[..., 1:]) and not np.array_equal(fa[..., 0], ftc[..., 0])
        assert _zone_correlation(fa) > 0.2 and _zone_correlation(ftc) < -0.2
    # on average the punctate signal is the same whatever the class (the zones and their complement are alike)
    bshg_means = []
    for seed in range(40):
        bshg_means.append([mpm_phantom(np.random.default_rng(seed), 64, co_located=flag)[..., 0].mean()
                           for flag in (True, False)])  # fmt: skip
    fa_mean, ftc_mean = np.mean(bshg_means, 0)
    assert abs(fa_mean / ftc_mean - 1.0) < 0.15
    uncoupled = [mpm_phantom(np.random.default_rng(0), 96, co_located=flag, coupling=0.0) for flag in (True, False)]
    assert np.array_equal(*uncoupled)


def test_sample_is_written_atomically_and_is_a_function_of_its_arguments(tmp_path):
    a = write_mpm_sample(tmp_path / "a", seed=1, **SMALL)
    b = write_mpm_sample(tmp_path / "b", seed=1, **SMALL)
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file()) and "sections.csv" in files
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    labels = {row.split(",")[1] for row in (a / "sections.csv").read_text().splitlines()[1:]}
    assert labels == set(MPM_CLASSES)
    assert np.asarray(Image.open(next(a.rglob("*.png")))).shape == (32, 32, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"], "no temporary folder left behind"
    with pytest.raises(FileExistsError):
        write_mpm_sample(a, seed=1, **SMALL)
