"""Colorization GAN losses: Eqs. 3-6 computed from logits."""

from __future__ import annotations

import math

import pytest
import torch

from common.losses import ColorizationDiscriminatorLoss, ColorizationGeneratorLoss


def test_generator_loss_is_content_plus_half_adversarial():
    fake, real = torch.full((1, 3, 2, 2), 0.25), torch.full((1, 3, 2, 2), 0.75)
    logits = torch.tensor([0.0])  # D = 1/2
    features_fake, features_real = [torch.zeros(1, 2, 2, 2)], [torch.ones(1, 2, 2, 2)]
    parts = ColorizationGeneratorLoss()(fake, real, logits, features_fake, features_real)
    assert parts["l1"].item() == pytest.approx(0.5)
    assert parts["feature"].item() == pytest.approx(1.0)  # mean over the map's cells (Eq. 4's 1 / (w h))
    assert parts["adversarial"].item() == pytest.approx(math.log(2))  # -log D(G(x))
    assert parts["loss"].item() == pytest.approx(0.5 + 1.0 + 0.5 * math.log(2))


def test_feature_lists_must_match():
    with pytest.raises(ValueError, match="feature maps"):
        ColorizationGeneratorLoss()(torch.zeros(1), torch.zeros(1), torch.zeros(1), [torch.zeros(1)], [])


def test_discriminator_loss_is_eq6():
    real_logits, fake_logits = torch.tensor([2.0]), torch.tensor([-1.0])
    d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    expected = -torch.log(d_real) - torch.log(1 - d_fake)
    assert ColorizationDiscriminatorLoss()(real_logits, fake_logits).item() == pytest.approx(expected.item(), rel=1e-5)
