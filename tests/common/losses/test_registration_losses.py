from __future__ import annotations

import pytest
import torch

from common.losses import RegistrationLoss, diffusion_regularizer, soft_dice_loss


def test_diffusion_regularizer_is_zero_for_translations_and_matches_hand_value():
    ddf = torch.full((1, 2, 8, 8), 3.0)
    assert diffusion_regularizer(ddf) == 0
    ramp = torch.zeros(1, 2, 4, 5)
    ramp[:, 0] = torch.arange(4.0)[:, None]  # du0/dx0 = 1 everywhere, no other derivative
    # axis 0 term: channel 0 differences are 1 (half of the channels), axis 1 term: 0 -> mean (0.5, 0) = 0.25
    assert torch.isclose(diffusion_regularizer(ramp), torch.tensor(0.25))


def test_soft_dice_loss_zero_for_identical_one_at_disjoint():
    a = torch.zeros(1, 2, 4, 4)
    a[:, 0, :2], a[:, 1, 2:] = 1, 1
    assert soft_dice_loss(a, a) < 1e-6
    assert soft_dice_loss(a, a.flip(1)) > 0.99


def test_registration_loss_rewards_the_true_shift():
    torch.manual_seed(0)
    fixed = torch.zeros(1, 1, 16, 16)
    fixed[..., 4:10, 5:11] = 1.0
    moving = torch.roll(fixed, shifts=2, dims=2)  # moving = fixed shifted by +2 along axis 0
    loss = RegistrationLoss(smooth_weight=0.01)
    true = torch.zeros(1, 2, 16, 16)
    true[:, 0] = 2.0  # sample the moving image 2 voxels further along axis 0
    identity = torch.zeros(1, 2, 16, 16)
    targets = {"moving": moving, "fixed": fixed}
    assert loss(true, targets) < 1e-6 < loss(identity, targets)
    assert set(loss.last_terms) == {"mse", "smooth"}


def test_registration_loss_dice_term_in_3d():
    labels = torch.zeros(1, 1, 6, 6, 6)
    labels[..., 1:4, 1:4, 1:4] = 1
    labels[..., 4:, 4:, 4:] = 2
    image = labels / 2
    loss = RegistrationLoss(smooth_weight=0.01, dice_weight=0.01, num_classes=3)
    targets = {"moving": image, "fixed": image, "moving_label": labels, "fixed_label": labels}
    value = loss(torch.zeros(1, 3, 6, 6, 6), targets)
    assert value < 1e-4 and loss.last_terms["dice"] < 1e-4
    with pytest.raises(KeyError, match="fixed_label"):
        loss(torch.zeros(1, 3, 6, 6, 6), {"moving": image, "fixed": image, "moving_label": labels})
    with pytest.raises(ValueError, match="num_classes"):
        RegistrationLoss(dice_weight=0.01)
