"""FFT style transfer (common/transforms/fft_style.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from common.transforms import FFTStyleTransfer, FFTStyleTransferd, fft_style_transfer


def _images():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 255, (3, 32, 40))
    target = rng.uniform(0, 255, (3, 32, 40)) * 0.5 + 60  # darker, lower contrast style
    return source, target


def test_beta_zero_transfers_the_mean_colour_only():
    source, target = _images()
    out = fft_style_transfer(source, target, beta=0.0)
    assert np.allclose(out.mean(axis=(1, 2)), target.mean(axis=(1, 2)), atol=1e-3)
    assert np.allclose(
        out - out.mean(axis=(1, 2), keepdims=True), source - source.mean(axis=(1, 2), keepdims=True), atol=1e-3
    )


def test_larger_band_takes_more_of_the_target_and_keeps_the_phase():
    source, target = _images()
    small, large = fft_style_transfer(source, target, 0.02), fft_style_transfer(source, target, 0.3)
    gap = [np.abs(np.abs(np.fft.fft2(o)) - np.abs(np.fft.fft2(target))).mean() for o in (small, large)]
    assert gap[1] < gap[0]
    assert np.allclose(fft_style_transfer(source, source, 0.1), source, atol=1e-3), "own style: unchanged"
    with pytest.raises(ValueError, match="beta"):
        fft_style_transfer(source, target, 0.7)
    with pytest.raises(ValueError, match="same C"):
        fft_style_transfer(source, target[:1], 0.1)


def test_array_transform_fits_another_size_and_clips():
    source, target = _images()
    out = FFTStyleTransfer(target[:, :20, :50], beta=0.05, clip=(0, 255))(torch.as_tensor(source))
    assert isinstance(out, torch.Tensor) and out.shape == source.shape and out.min() >= 0 and out.max() <= 255


def test_dict_twin_draws_a_target_with_its_probability_and_keeps_meta():
    source, target = _images()
    never = FFTStyleTransferd("image", [target], prob=0.0)
    assert np.array_equal(never({"image": source})["image"], source)
    always = FFTStyleTransferd("image", ["t"], beta=0.0, loader=lambda path: target)
    always.set_random_state(0)
    item = always({"image": MetaTensor(torch.as_tensor(source), meta={"filename_or_obj": "a.tiff"})})
    assert item["image"].meta["filename_or_obj"] == "a.tiff"
    assert np.allclose(item["image"].numpy().mean(axis=(1, 2)), target.mean(axis=(1, 2)), atol=1e-2)
    with pytest.raises(ValueError, match="loader"):
        FFTStyleTransferd("image", ["path.tiff"])
    with pytest.raises(ValueError, match="at least one"):
        FFTStyleTransferd("image", [])
