from __future__ import annotations

import pytest
import torch

from common.networks import IEWADWTDown, haar_dwt2d


def _corners(x):
    return x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]


def test_iewa_dwt_closed_form_and_band_identities():
    x = torch.randn(2, 5, 8, 6)
    a, b, c, d = _corners(x)
    assert torch.allclose(IEWADWTDown()(x), (3 * a + b + c - d) / 2, atol=1e-6)
    ll, lh, hl, hh = haar_dwt2d(x)
    assert torch.allclose(ll + lh + hl + hh, 2 * a, atol=1e-6)
    assert torch.allclose(hh, (a - b - c + d) / 2, atol=1e-6)
    energy = sum((band**2).sum() for band in (ll, lh, hl, hh))
    assert torch.allclose(energy, (x**2).sum(), rtol=1e-5), "orthonormal Haar keeps the energy"


def test_concat_all_bands_and_no_parameters():
    x = torch.randn(1, 3, 4, 4)
    out = IEWADWTDown("all", reduce="concat")(x)
    assert out.shape == (1, 12, 2, 2)
    assert torch.allclose(out[:, 4:8], torch.stack(haar_dwt2d(x), 2)[:, 1], atol=1e-6)  # channel 1's four bands
    assert not list(IEWADWTDown().parameters())


def test_errors_and_scripting():
    with pytest.raises(ValueError, match="divisible by 2"):
        IEWADWTDown()(torch.zeros(1, 1, 5, 4))
    with pytest.raises(ValueError, match="bands must be distinct"):
        IEWADWTDown(("LL", "XX"))
    with pytest.raises(ValueError, match="reduce"):
        IEWADWTDown(reduce="mean")
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(torch.jit.script(IEWADWTDown())(x), IEWADWTDown()(x))
