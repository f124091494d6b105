"""Tests of common.transforms.colour_jitter: stain (HED) / channel / gamma augmentation of RGB tiles."""

from __future__ import annotations

import pytest
import torch

from common.transforms import RandStainColourJitter, RandStainColourJitterd


def _image(seed: int = 0) -> torch.Tensor:
    return torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(seed)) * 0.9 + 0.05


def test_no_jitter_settings_are_the_identity():
    x = _image()
    jitter = RandStainColourJitter(prob=1.0, stain_sigma=0.0, shuffle_prob=0.0, gamma_range=(1.0, 1.0))
    assert torch.allclose(jitter(x), x, atol=1e-6)
    # stain jitter with a zero draw is the identity too: the HED projection round-trips
    jitter = RandStainColourJitter(prob=1.0, stain_sigma=1e-12, shuffle_prob=0.0, gamma_range=(1.0, 1.0))
    assert torch.allclose(jitter(x), x, atol=1e-5)
    assert torch.equal(RandStainColourJitter(prob=0.0)(x), x)


def test_jitter_changes_colour_stays_in_range_and_is_seeded():
    x = _image()
    a = RandStainColourJitter(prob=1.0, stain_sigma=0.2).set_random_state(3)
    b = RandStainColourJitter(prob=1.0, stain_sigma=0.2).set_random_state(3)
    ya, yb = a(x), b(x)
    assert torch.equal(ya, yb) and ya.shape == x.shape and ya.dtype == torch.float32
    assert 0.0 <= float(ya.min()) and float(ya.max()) <= 1.0
    assert (ya - x).abs().mean() > 0.01
    assert not torch.equal(a(x), ya)  # a new draw per call


def test_channel_permutation_keeps_the_channel_values():
    x = _image()
    y = RandStainColourJitter(prob=1.0, stain_sigma=0.0, shuffle_prob=1.0, gamma_range=(1, 1)).set_random_state(1)(x)
    assert sorted(float(c.sum()) for c in y) == pytest.approx(sorted(float(c.sum()) for c in x))


def test_dictionary_version_applies_one_draw_to_every_key_and_resumes_from_its_state():
    x = _image()
    t = RandStainColourJitterd(keys=["a", "b"], prob=1.0, stain_sigma=0.1).set_random_state(5)
    out = t({"a": x, "b": x.clone()})
    assert torch.equal(out["a"], out["b"]) and not torch.equal(out["a"], x)
    state = t.R.get_state()
    first = t({"a": x, "b": x})["a"]
    t.R.set_state(state)  # what TrainingCheckpoints restores on resume
    assert torch.equal(t({"a": x, "b": x})["a"], first)


def test_bad_arguments_and_inputs_are_errors():
    with pytest.raises(ValueError, match="shuffle_prob"):
        RandStainColourJitter(shuffle_prob=2.0)
    with pytest.raises(ValueError, match="stain_sigma"):
        RandStainColourJitter(stain_sigma=-0.1)
    with pytest.raises(ValueError, match="gamma_range"):
        RandStainColourJitter(gamma_range=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"RGB image \(3, H, W\)"):
        RandStainColourJitter(prob=1.0)(torch.rand(1, 8, 8))
