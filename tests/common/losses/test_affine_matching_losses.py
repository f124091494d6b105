from __future__ import annotations

import torch

from common.losses import AffineNCCLoss, CoarseMatchingLoss, local_ncc


def test_local_ncc_and_affine_loss():
    torch.manual_seed(0)
    a = torch.rand(1, 1, 24, 24)
    assert local_ncc(a, a).item() > 0.99
    assert abs(local_ncc(a, torch.rand(1, 1, 24, 24)).item()) < 0.3
    identity = torch.tensor([[1.0, 0, 0, 0, 1.0, 0]], requires_grad=True)
    loss = AffineNCCLoss(5)(identity, {"moving": a, "fixed": a})
    shifted = AffineNCCLoss(5)(torch.tensor([[1.0, 0, 3.0, 0, 1.0, 0]]), {"moving": a, "fixed": a})
    assert loss.item() < shifted.item()
    loss.backward()
    assert torch.isfinite(identity.grad).all()


def test_coarse_matching_loss():
    conf = torch.full((1, 2, 3), 0.1)
    conf[0, 0, 2] = 0.9
    loss = CoarseMatchingLoss()(conf, {"gt": torch.tensor([[2, -1]])})
    assert torch.isclose(loss, -torch.log(torch.tensor(0.9 + 1e-6)))
    assert CoarseMatchingLoss()(conf, {"gt": torch.tensor([[-1, -1]])}).item() == 0.0
