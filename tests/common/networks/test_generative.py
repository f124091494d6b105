"""Tests of common.networks.generative: the WGAN generator/critic and the convolutional autoencoder."""

from __future__ import annotations

import pytest
import torch

from common.networks import ConvAutoencoder, WGANCritic, WGANGenerator, check_power_of_two_size


@pytest.mark.parametrize("size", [32, 64])
def test_generator_and_critic_shapes(size):
    generator = WGANGenerator(latent_dim=16, image_size=size, channels=3, width=4)
    critic = WGANCritic(image_size=size, channels=3, width=4)
    images = generator(torch.randn(5, 16))
    assert images.shape == (5, 3, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert generator(torch.randn(2, 16, 1, 1)).shape == (2, 3, size, size)
    scores = critic(images)
    assert scores.shape == (5,)
    samples = generator.sample(7, seed=3)
    assert samples.shape == (7, 3, size, size) and samples.min() >= 0 and samples.max() <= 1
    assert torch.equal(samples, generator.sample(7, seed=3))
    assert not torch.equal(samples, generator.sample(7, seed=4))
    assert generator.sample(0).shape == (0, 3, size, size)


def test_critic_is_unbounded_without_batch_norm_or_sigmoid():
    for norm in ("layer", "none"):
        critic = WGANCritic(image_size=32, width=4, norm=norm)
        kinds = {type(m) for m in critic.modules()}
        assert torch.nn.BatchNorm2d not in kinds and torch.nn.Sigmoid not in kinds
        assert (torch.nn.GroupNorm in kinds) == (norm == "layer")
    critic = WGANCritic(image_size=32, width=4, norm="none")
    with torch.no_grad():
        critic.net[-1].bias.fill_(5.0)
    assert (critic(torch.zeros(2, 3, 32, 32)) > 1).all()  # a sigmoid could never exceed 1
    # per-sample normalisation: a sample's score does not depend on the rest of the batch (needed by the penalty)
    critic = WGANCritic(image_size=32, width=4, norm="layer").eval()
    x = torch.rand(4, 3, 32, 32)
    assert torch.allclose(critic(x)[:1], critic(x[:1]), atol=1e-5)


def test_bad_sizes_are_rejected():
    assert check_power_of_two_size(64) == 6
    for bad in (16, 48, 100, 1024, 64.0, True):
        with pytest.raises(ValueError, match="power of two"):
            check_power_of_two_size(bad)
    with pytest.raises(ValueError, match="power of two"):
        WGANGenerator(image_size=96)
    with pytest.raises(ValueError, match="power of two"):
        WGANCritic(image_size=16)
    with pytest.raises(ValueError, match="power of two"):
        ConvAutoencoder(image_size=600)
    with pytest.raises(ValueError, match="norm"):
        WGANCritic(norm="batch")
    with pytest.raises(ValueError, match="depth"):
        ConvAutoencoder(image_size=32, depth=4)
    with pytest.raises(ValueError, match="latents"):
        WGANGenerator(latent_dim=8, image_size=32, width=4)(torch.randn(2, 9))
    with pytest.raises(ValueError, match="expected images"):
        WGANCritic(image_size=32, width=4)(torch.rand(2, 3, 64, 64))


def test_autoencoder_shapes_relu_and_loss():
    cae = ConvAutoencoder(image_size=32, channels=3, width=4, latent_channels=6, depth=2)
    x = torch.rand(3, 3, 32, 32)
    y = cae.encode(x)
    assert y.shape == (3, 6, 8, 8) == (3, *cae.latent_shape)
    assert y.min() >= 0  # Eq. 7: ReLU feature space
    z = cae.decode(y)
    assert z.shape == x.shape and z.min() >= 0  # Eq. 8: ReLU reconstruction
    assert torch.allclose(cae(x), z)
    assert torch.allclose(cae.reconstruction_loss(x), ((z - x) ** 2).mean())
    with pytest.raises(ValueError, match="latents"):
        cae.decode(torch.rand(1, 6, 4, 4))
    # the output ReLU starts in its active region (no colour channel begins dead)
    torch.manual_seed(0)
    fresh = ConvAutoencoder(image_size=32, width=4, latent_channels=6, depth=2)
    assert ((fresh(x) > 0).float().mean(dim=(0, 2, 3)) > 0.9).all()


def test_autoencoder_learns_to_reconstruct():
    torch.manual_seed(0)
    cae = ConvAutoencoder(image_size=32, width=8, latent_channels=8, depth=2)
    x = torch.rand(6, 3, 1, 1).expand(6, 3, 32, 32).clone()  # flat colour patches
    x[:, :, 8:20, 8:20] = 0.9
    opt = torch.optim.Adam(cae.parameters(), lr=3e-3)
    first = cae.reconstruction_loss(x).item()
    for _ in range(60):
        opt.zero_grad()
        loss = cae.reconstruction_loss(x)
        loss.backward()
        opt.step()
    assert cae.reconstruction_loss(x).item() < 0.3 * first
