"""Tests of common.networks.discriminators: the VGG-style rVTT critics."""

from __future__ import annotations

import pytest
import torch

from common.networks import VGGStyleDiscriminator


@pytest.mark.parametrize("size", [16, 32, 64, 100])
def test_one_score_per_image_any_size(size):
    critic = VGGStyleDiscriminator(base_channels=8, num_stages=4)
    assert critic(torch.rand(3, 3, size, size)).shape == (3,)


def test_rejects_small_inputs_and_bad_sizes():
    critic = VGGStyleDiscriminator(base_channels=8, num_stages=3)
    with pytest.raises(ValueError, match="minimum 8"):
        critic(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="positive"):
        VGGStyleDiscriminator(base_channels=0)
    plain = VGGStyleDiscriminator(base_channels=4, num_stages=2, batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in plain.modules())


def test_critic_can_separate_sharp_from_blurred():
    torch.manual_seed(0)
    critic = VGGStyleDiscriminator(base_channels=8, num_stages=2, hidden=16)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    sharp = torch.rand(8, 3, 16, 16)
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, 1, 1)
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-(critic(sharp) - critic(blurred))).mean()
        loss.backward()
        opt.step()
    critic.eval()
    assert (critic(sharp) > critic(blurred)).float().mean() > 0.8
