"""Tests of common.engines.generative_training: the WGAN and CAE of the cutaneous augmentation regimes."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from common.engines import DEFAULT_CAE_EPOCHS, DEFAULT_WGAN_EPOCHS, sample_autoencoder, train_autoencoder, train_wgan

# ------------------------------------------------------------------------------------------- WGAN


def test_wgan_moves_samples_toward_each_class_and_critic_improves(squares):
    results = {}
    for bright in (True, False):
        data = squares(24, 32, bright)
        history: list = []
        generator = train_wgan(data, latent_dim=32, width=16, epochs=30, batch_size=8, learning_rate=1e-3,
                               seed=1, history=history)  # fmt: skip
        untrained = train_wgan(data, latent_dim=32, width=16, epochs=0, seed=1)
        assert len(history) == 30 and np.isfinite(history[-1]["generator_loss"])
        # the critic learns to tell real from generated: its loss falls and its Wasserstein estimate grows
        assert np.mean([h["critic_loss"] for h in history[-5:]]) < history[0]["critic_loss"] - 1.0
        assert history[-1]["wasserstein"] > history[0]["wasserstein"]
        sample = generator.sample(64, seed=0)
        assert sample.shape == (64, 3, 32, 32) and not generator.training
        target = data.mean().item()
        assert abs(sample.mean().item() - target) < abs(untrained.sample(64, seed=0).mean().item() - target) - 0.1
        results[bright] = sample.mean().item()
    assert results[True] < 0.4 < 0.55 < results[False]  # bright squares on dark ground vs the reverse


def test_wgan_is_seeded_and_supports_weight_clipping(caplog, squares):
    data = squares(8, 32, True)
    kwargs = dict(latent_dim=8, width=4, epochs=3, batch_size=4, n_critic=2)
    a = train_wgan(data, seed=5, **kwargs).sample(4, seed=0)
    assert torch.equal(a, train_wgan(data, seed=5, **kwargs).sample(4, seed=0))
    assert not torch.equal(a, train_wgan(data, seed=6, **kwargs).sample(4, seed=0))
    clipped: list = []
    penalised: list = []
    train_wgan(data, seed=5, clip_value=0.01, history=clipped, **kwargs)
    train_wgan(data, seed=5, history=penalised, **kwargs)
    # clipped weights keep the critic's scores (and its distance estimate) tiny compared with WGAN-GP
    assert abs(clipped[-1]["wasserstein"]) < 0.1 * abs(penalised[-1]["wasserstein"])
    with caplog.at_level(logging.INFO, logger="common.engines.generative_training"):
        train_wgan(data, seed=5, progress=True, log_every=1, **kwargs)
        train_autoencoder(data, width=4, depth=2, epochs=2, progress=True, log_every=1)
    assert sum("WGAN epoch" in r.message for r in caplog.records) == 3
    assert sum("CAE epoch" in r.message for r in caplog.records) == 2
    with pytest.raises(ValueError, match="clip_value"):
        train_wgan(data, clip_value=-1.0, **kwargs)
    with pytest.raises(ValueError, match="optimizer"):
        train_wgan(data, optimizer="sgd", **kwargs)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_wgan(data * 2, **kwargs)
    with pytest.raises(ValueError, match="square"):
        train_wgan(torch.rand(2, 3, 32, 64), **kwargs)


def test_wgan_generator_steps_are_counted_across_epochs(squares):
    history: list = []
    train_wgan(squares(8, 32, True), latent_dim=8, width=4, epochs=3, batch_size=4, n_critic=3, history=history)
    # two critic steps per epoch: the generator steps after critic steps 3 and 6, in epochs 2 and 3 only
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert math.isnan(history[0]["generator_loss"]) and all(np.isfinite(h["generator_loss"]) for h in history[1:])


# ------------------------------------------------------------------------------------------- CAE


def test_autoencoder_training_reduces_error_and_samples_follow_the_class(squares):
    dark, bright = squares(16, 32, True), squares(16, 32, False)
    history: list = []
    cae = train_autoencoder(dark, width=8, latent_channels=4, depth=2, epochs=40, learning_rate=3e-3, seed=0,
                            history=history)  # fmt: skip
    assert history[-1]["loss"] < 0.3 * history[0]["loss"]
    # better than half the error of predicting the class's mean image: it reconstructs the individual squares
    assert history[-1]["loss"] < 0.5 * ((dark - dark.mean(0)) ** 2).mean()
    assert not cae.training
    samples = sample_autoencoder(cae, dark, 20, seed=1)
    assert samples.shape == (20, 3, 32, 32) and samples.min() >= 0 and samples.max() <= 1
    assert abs(samples.mean() - dark.mean()) < 0.1
    assert torch.equal(samples, sample_autoencoder(cae, dark, 20, seed=1))
    assert not torch.equal(samples, sample_autoencoder(cae, dark, 20, seed=2))
    # new images, not copies of the training images
    distances = torch.cdist(samples.flatten(1), dark.flatten(1)).min(dim=1).values
    assert (distances > 1.0).all()
    cae_bright = train_autoencoder(bright, width=8, latent_channels=4, depth=2, epochs=25, learning_rate=3e-3)
    assert sample_autoencoder(cae_bright, bright, 20).mean() > samples.mean() + 0.3
    assert sample_autoencoder(cae, dark, 0).shape == (0, 3, 32, 32)


def test_default_budgets_are_exposed():
    assert DEFAULT_WGAN_EPOCHS > 0 and DEFAULT_CAE_EPOCHS > 0
