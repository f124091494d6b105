"""Tests of the weight-free perceptual measures of super resolution: GMSD and the high-frequency energy ratio."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d

from common.metrics import gmsd, high_frequency_ratio


def _reference_gmsd(sr: np.ndarray, hr: np.ndarray, c: float = 170.0) -> float:
    """GMSD written independently with NumPy/SciPy (HxWx3 images in [0, 1])."""

    def magnitude(image: np.ndarray) -> np.ndarray:
        luma = 255.0 * (0.299 * image[..., 0] + 0.587 * image[..., 1] + 0.114 * image[..., 2])
        h, w = luma.shape[0] // 2 * 2, luma.shape[1] // 2 * 2
        luma = luma[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        kx = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0
        # correlation, as torch's conv2d: flip the kernel for convolve2d
        gx = convolve2d(luma, kx[::-1, ::-1], mode="valid")
        gy = convolve2d(luma, kx.T[::-1, ::-1], mode="valid")
        return np.sqrt(gx**2 + gy**2)

    m_sr, m_hr = magnitude(sr), magnitude(hr)
    gms = (2 * m_sr * m_hr + c) / (m_sr**2 + m_hr**2 + c)
    return float(gms.std())


def _images(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    smooth = F.avg_pool2d(torch.rand(2, 3, 70, 70, generator=generator), 7, 1)  # (2, 3, 64, 64), some structure
    return (smooth - smooth.amin()) / (smooth.amax() - smooth.amin())


def test_gmsd_matches_an_independent_implementation():
    hr = _images(0)
    sr = (hr + 0.05 * torch.randn(hr.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    got = gmsd(sr, hr)
    assert got.shape == (2,)
    for b in range(2):
        expected = _reference_gmsd(sr[b].permute(1, 2, 0).numpy().astype(np.float64),
                                   hr[b].permute(1, 2, 0).numpy().astype(np.float64))  # fmt: skip
        assert float(got[b]) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_gmsd_is_zero_for_equal_images_and_grows_with_blur():
    hr = _images(2)
    assert torch.allclose(gmsd(hr, hr), torch.zeros(2), atol=1e-7)
    light = F.avg_pool2d(F.pad(hr, (1, 1, 1, 1), mode="replicate"), 3, 1)
    heavy = F.avg_pool2d(F.pad(hr, (3, 3, 3, 3), mode="replicate"), 7, 1)
    assert torch.all(gmsd(light, hr) > 0)
    assert torch.all(gmsd(heavy, hr) > gmsd(light, hr))
    assert gmsd(hr[0], hr[0]).shape == (1,)  # (C, H, W) accepted
    assert torch.allclose(gmsd(hr[:, :1], hr[:, :1]), torch.zeros(2), atol=1e-7)  # grey


def test_gmsd_rejects_bad_input():
    hr = _images(0)
    with pytest.raises(ValueError, match="differ"):
        gmsd(hr[..., :32], hr)
    with pytest.raises(ValueError, match="channels"):
        gmsd(hr[:, :2], hr[:, :2])
    with pytest.raises(ValueError, match="below"):
        gmsd(hr[..., :6, :6], hr[..., :6, :6])


def test_high_frequency_ratio_measures_detail_against_the_reference():
    hr = _images(3)
    assert torch.allclose(high_frequency_ratio(hr, hr), torch.ones(2))
    blurred = F.avg_pool2d(F.pad(hr, (1, 1, 1, 1), mode="replicate"), 3, 1)
    assert torch.all(high_frequency_ratio(blurred, hr) < 0.5)
    # the Laplacian is linear: doubling the deviation from a constant quadruples the energy
    grey = torch.full((1, 1, 32, 32), 0.25)
    detail = 0.1 * torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(4))
    ratio = high_frequency_ratio(grey + 2 * detail, grey + detail)
    assert float(ratio) == pytest.approx(4.0, rel=1e-4)
    flat = torch.full((1, 3, 16, 16), 0.5)
    assert float(high_frequency_ratio(flat, flat)) == 1.0
    assert float(high_frequency_ratio(hr[:1, :, :16, :16], flat)) == float("inf")
    with pytest.raises(ValueError, match="differ"):
        high_frequency_ratio(hr[..., :8], hr)
