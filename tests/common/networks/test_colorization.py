"""Colorization GAN networks: generator and discriminator shapes, self-attention starting as the identity."""

from __future__ import annotations

import pytest
import torch

from common.networks import COLORIZER_ENCODERS, ColorizationDiscriminator, ColorizationGenerator, SelfAttention2d


def test_generator_maps_grey_to_rgb_in_unit_range():
    torch.manual_seed(0)
    generator = ColorizationGenerator(encoder_depth=18, decoder_width=8).eval()
    with torch.no_grad():
        rgb = generator(torch.rand(2, 1, 64, 96))
    assert rgb.shape == (2, 3, 64, 96)
    assert rgb.min() >= 0 and rgb.max() <= 1


def test_encoder_depths():
    assert set(COLORIZER_ENCODERS) == {18, 34}
    assert len(ColorizationGenerator(34).encoder.layer3) == 6
    with pytest.raises(ValueError, match="unsupported encoder depth"):
        ColorizationGenerator(50)


def test_discriminator_returns_one_logit_per_image_and_features():
    logits, features = ColorizationDiscriminator(width=8)(torch.rand(3, 3, 64, 64))
    assert logits.shape == (3,)
    assert [f.shape[-1] for f in features] == [32, 16, 8, 8, 4]  # 4 blocks + self-attention on the third


def test_self_attention_starts_as_identity_and_learns():
    attention = SelfAttention2d(16)
    x = torch.rand(2, 16, 5, 5)
    assert torch.equal(attention(x), x)
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    assert not torch.allclose(attention(x), x)
