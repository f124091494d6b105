"""Tests of common.metrics.super_resolution: PSNR/SSIM, GMSD, high-frequency ratio, scored baselines."""

from __future__ import annotations

import math

import pytest
import torch

from common.metrics import sr_quality


def test_sr_quality_matches_closed_form():
    hr = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    perfect = sr_quality(hr.clone(), hr)
    assert perfect["ssim"] == pytest.approx(1.0, abs=1e-5) and perfect["psnr"] > 80
    noisy = (hr + 0.1).clamp(0, 1)
    mse = float(((noisy - hr) ** 2).flatten(1).mean(1)[0])
    expected = 10 * math.log10(1.0 / mse)
    assert sr_quality(noisy[:1], hr[:1])["psnr"] == pytest.approx(expected, rel=1e-4)
    assert sr_quality(noisy, hr, border=4)["ssim"] < 1.0
    with pytest.raises(ValueError, match="differ"):
        sr_quality(hr[:, :, :16], hr)
    with pytest.raises(ValueError, match="SSIM"):
        sr_quality(hr, hr, border=12)


def test_from_engine_upsampled():
    from common.metrics import from_engine_upsampled

    hr = torch.rand(3, 16, 16)
    lr = torch.nn.functional.avg_pool2d(hr[None], 4)[0]
    preds, targets = from_engine_upsampled(["image", "label"], "nearest")([{"image": lr, "label": hr}])
    assert preds[0].shape == hr.shape and targets[0] is hr
    assert torch.equal(preds[0][:, :4, :4], lr[:, :1, :1].expand(3, 4, 4))
    single, _ = from_engine_upsampled()({"image": lr, "label": hr})
    assert len(single) == 1
