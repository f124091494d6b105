"""Guided-SET-DCL network: shapes, TorchScript, guidance switch, prototypes, the training forward."""

from __future__ import annotations

import pytest
import torch

from common.networks import GuidedSETDCLNet, SpatialSE, masked_average_pooling, minmax_normalise, patch_prototypes


def test_masked_average_pooling_is_the_masked_mean():
    features = torch.arange(8.0).reshape(1, 2, 2, 2)  # channel 0: 0 1 / 2 3, channel 1: 4 5 / 6 7
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    torch.testing.assert_close(masked_average_pooling(features, mask), torch.tensor([[1.5, 5.5]]), atol=1e-4, rtol=0)


def test_patch_prototypes_and_their_validity():
    features = torch.ones(1, 3, 8, 8)
    features[:, :, :4, :4] = 2.0
    mask = torch.zeros(1, 1, 8, 8)
    mask[:, :, :4, :4] = 1.0
    prototypes, valid = patch_prototypes(features, mask, grid=2)
    assert prototypes.shape == (1, 4, 3) and valid.tolist() == [[True, False, False, False]]
    torch.testing.assert_close(prototypes[0, 0], torch.full((3,), 2.0), atol=1e-3, rtol=0)


def test_spatial_se_gates_the_target_by_the_guide_and_minmax_spans_zero_one():
    se = SpatialSE(4)
    torch.nn.init.zeros_(se.conv.weight)
    torch.nn.init.zeros_(se.conv.bias)
    target = torch.ones(1, 2, 3, 3)
    torch.testing.assert_close(se(target, torch.rand(1, 4, 3, 3)), target * 0.5)
    m = minmax_normalise(torch.tensor([[[[2.0, 4.0], [6.0, 10.0]]]]))
    assert float(m.min()) == 0.0 and abs(float(m.max()) - 1.0) < 1e-4


def test_forward_shapes_torchscript_and_guidance():
    torch.manual_seed(0)
    net = GuidedSETDCLNet(features=(4, 8, 16), refine_iterations=2).eval()
    x = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        y = net(x)
        assert y.shape == (2, 2, 32, 32)
        torch.testing.assert_close(torch.jit.script(net)(x), y)
        unguided = GuidedSETDCLNet(features=(4, 8, 16), refine_iterations=2, guidance=False).eval()
        unguided.load_state_dict(net.state_dict())
        other_prior = x.clone()
        other_prior[:, 3] = 1 - other_prior[:, 3]
        torch.testing.assert_close(unguided(x), unguided(other_prior))  # SET-DCL ignores the MRF mask
        assert not torch.allclose(net(x), net(other_prior))
    with pytest.raises(ValueError, match="two levels"):
        GuidedSETDCLNet(features=(8,))


def test_training_forward_leaves_the_loss_inputs():
    net = GuidedSETDCLNet(features=(4, 8), refine_iterations=1, grid=2, num_unrelated=3).train()
    y = net(torch.rand(2, 4, 16, 16), torch.rand(2, 6, 16, 16))
    out = net.episode_outputs
    assert y.shape == (2, 2, 16, 16) and out["iterates"].shape == (2, 2, 2, 16, 16)
    assert out["unrelated_prototypes"].shape == (2, 3, 4) and out["unrelated_patches"].shape == (2, 12, 4)
    assert out["query_context"].shape == (2, 4) and out["query_patches_valid"].dtype == torch.bool
