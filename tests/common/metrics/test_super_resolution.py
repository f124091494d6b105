"""Tests of common.metrics.super_resolution: baselines, PSNR/SSIM and the comparison figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.metrics import sr_quality, upsample, write_sr_comparison


def test_upsample_modes_and_clamping():
    lr = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    nearest = upsample(lr, (4, 4), "nearest")
    assert torch.equal(nearest[0, 0, :2, :2], torch.zeros(2, 2))
    bicubic = upsample(lr, (8, 8), "bicubic")
    assert bicubic.shape == (1, 1, 8, 8) and bicubic.min() >= 0 and bicubic.max() <= 1
    assert upsample(lr[0], (6, 6), "bicubic").shape == (1, 6, 6)
    with pytest.raises(ValueError, match="mode"):
        upsample(lr, (4, 4), "lanczos")
    with pytest.raises(ValueError, match="shape"):
        upsample(lr[0, 0], (4, 4), "nearest")


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


def test_write_sr_comparison(tmp_path: Path):
    path = tmp_path / "figs" / "cmp.png"
    lr = np.random.default_rng(0).random((8, 8, 3))
    hr = np.zeros((32, 32, 3), np.uint8)
    write_sr_comparison(str(path), {"LR": lr, "bicubic": np.zeros((3, 32, 32)), "SR": np.ones((32, 32)), "HR": hr})
    figure = np.asarray(Image.open(path))
    assert figure.shape[0] > 32 and figure.shape[1] >= 4 * 32 and figure.shape[2] == 3
    assert not list(path.parent.glob(".*tmp"))
    with pytest.raises(ValueError, match="at least one"):
        write_sr_comparison(str(path), {})
    with pytest.raises(ValueError, match="panel"):
        write_sr_comparison(str(path), {"bad": np.zeros((2, 2, 2, 2))})


def test_from_engine_upsampled():
    from common.metrics import from_engine_upsampled

    hr = torch.rand(3, 16, 16)
    lr = torch.nn.functional.avg_pool2d(hr[None], 4)[0]
    preds, targets = from_engine_upsampled(["image", "label"], "nearest")([{"image": lr, "label": hr}])
    assert preds[0].shape == hr.shape and targets[0] is hr
    assert torch.equal(preds[0][:, :4, :4], lr[:, :1, :1].expand(3, 4, 4))
    single, _ = from_engine_upsampled()({"image": lr, "label": hr})
    assert len(single) == 1
