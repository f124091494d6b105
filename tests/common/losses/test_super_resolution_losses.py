"""Tests of common.losses.super_resolution: reconstruction (SRNet / SRNet-w), perceptual and relativistic losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from common.losses import (
    EdgeWeightedL1Loss,
    PerceptualLoss,
    ReconstructionLoss,
    RelativisticPairLoss,
    VGGFeatureExtractor,
)


def test_random_vgg_extractor_is_frozen_and_deterministic():
    a, b = VGGFeatureExtractor(seed=3), VGGFeatureExtractor(seed=3)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(a(x), b(x))
    assert a(x).shape == (1, 64, 8, 8)
    assert not any(p.requires_grad for p in a.parameters())
    a.train()
    assert not a.training
    assert not torch.equal(VGGFeatureExtractor(seed=4)(x), a(x))
    with pytest.raises(FileNotFoundError, match="VGG19 checkpoint"):
        VGGFeatureExtractor(checkpoint="/nonexistent/vgg19.pth")


def test_vgg19_checkpoint_path_is_used(tmp_path):
    from torchvision.models import vgg19

    path = tmp_path / "vgg19.pth"
    torch.save(vgg19(weights=None).state_dict(), path)
    extractor = VGGFeatureExtractor(checkpoint=str(path))
    assert extractor.pretrained
    assert extractor(torch.rand(1, 3, 32, 32)).shape == (1, 512, 2, 2)


def test_perceptual_loss_zero_for_identical_and_has_gradient():
    loss = PerceptualLoss()
    hr = torch.rand(2, 3, 16, 16)
    assert loss(hr, hr).item() == 0.0
    sr = (hr + 0.1 * torch.randn_like(hr)).requires_grad_()
    value = loss(sr, hr)
    value.backward()
    assert value.item() > 0 and sr.grad.abs().sum() > 0


def test_edge_weighted_l1_weights_edges():
    hr = torch.zeros(1, 3, 16, 16)
    hr[..., 8:] = 1.0  # a vertical edge
    loss = EdgeWeightedL1Loss(alpha=4.0)
    weight = loss.edge_weight(hr)
    assert weight.min() == pytest.approx(1.0) and weight.max() == pytest.approx(5.0)
    assert weight[0, 0, 5, 7] > weight[0, 0, 5, 2]
    near_edge, far = hr.clone(), hr.clone()
    near_edge[..., 7] += 0.5
    far[..., 1] += 0.5
    assert loss(near_edge, hr) > loss(far, hr)
    assert EdgeWeightedL1Loss(alpha=0.0)(far, hr).item() == pytest.approx(F.l1_loss(far, hr).item())
    with pytest.raises(ValueError, match="alpha"):
        EdgeWeightedL1Loss(alpha=-1)


def test_reconstruction_loss_combines_terms():
    hr, sr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    plain = ReconstructionLoss(eta=2.0, perceptual_weight=0.0)
    assert plain.perceptual is None
    assert plain(sr, hr).item() == pytest.approx(2.0 * F.l1_loss(sr, hr).item(), rel=1e-5)
    full = ReconstructionLoss(eta=1.0, perceptual_weight=0.5)
    expected = F.l1_loss(sr, hr) + 0.5 * full.perceptual(sr, hr)
    assert full(sr, hr).item() == pytest.approx(expected.item(), rel=1e-5)
    assert isinstance(ReconstructionLoss(edge_alpha=2.0).pixel, EdgeWeightedL1Loss)


def test_relativistic_pair_loss():
    loss = RelativisticPairLoss()
    equal = torch.zeros(4)
    assert loss(equal, equal).item() == pytest.approx(2 * math.log(2))
    confident = loss(torch.full((4,), 10.0), torch.full((4,), -10.0))
    assert confident.item() < 1e-6
    swapped = loss(torch.full((4,), -10.0), torch.full((4,), 10.0))  # the generator's view of the same scores
    assert swapped.item() > 30
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])
    paired = RelativisticPairLoss(average=False)(real, fake)
    averaged = RelativisticPairLoss(average=True)(real, fake)
    expected = F.softplus(-(real - fake)).mean() + F.softplus(fake - real).mean()
    assert paired.item() == pytest.approx(expected.item(), rel=1e-5)
    assert averaged.item() != pytest.approx(paired.item())
    with pytest.raises(ValueError, match="shapes"):
        loss(torch.zeros(2), torch.zeros(3))
