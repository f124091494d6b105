"""DAH discriminators and gradient reversal (common/networks/dah.py)."""

from __future__ import annotations

import torch

from common.networks import DomainAdaptationHead, DomainDiscriminator, GradientReversal, grad_reverse


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.ones(3, requires_grad=True)
    grad_reverse(x, 0.5).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))
    y = torch.ones(2, requires_grad=True)
    out = GradientReversal(2.0)(y)
    assert torch.equal(out, y)
    out.sum().backward()
    assert torch.equal(y.grad, torch.full((2,), -2.0))


def test_discriminators_learn_while_features_are_pushed_the_other_way():
    torch.manual_seed(0)
    head = DomainAdaptationHead(8, grl_weight=1.0)
    assert isinstance(head.global_discriminator, DomainDiscriminator)
    feature = torch.randn(2, 8, 4, 4, requires_grad=True)
    cls, box = torch.zeros(2, 1, 4, 4), torch.zeros(2, 5, 4, 4)
    losses = head([feature], [cls], [box], torch.tensor([0.0, 1.0]))
    assert set(losses) == {"global_alignment", "centre_alignment"}
    loss = losses["global_alignment"] + losses["centre_alignment"]
    loss.backward()
    d_param = next(head.global_discriminator.parameters())
    assert d_param.grad is not None and feature.grad is not None
    # the features' gradient is the reverse of the one that would lower the discriminator loss
    plain = feature.detach().clone().requires_grad_(True)
    head.grl.weight = -1.0  # reversing the reversal gives the plain gradient
    l2 = head([plain], [cls], [box], torch.tensor([0.0, 1.0]))
    (l2["global_alignment"] + l2["centre_alignment"]).backward()
    assert torch.allclose(feature.grad, -plain.grad, atol=1e-6)


def test_centre_aware_map_is_detached_and_mean_one():
    cls = torch.randn(1, 1, 4, 4, requires_grad=True)
    m = DomainAdaptationHead.centre_aware_map(cls, torch.randn(1, 5, 4, 4))
    assert not m.requires_grad and torch.isclose(m.mean(), torch.tensor(1.0))
    head = DomainAdaptationHead(8)
    same = head([torch.randn(1, 8, 2, 2)], [torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 5, 2, 2)], 1.0)
    assert same["global_alignment"] > 0
