"""Unit tests of common.losses.fusion_reconstruction."""

from __future__ import annotations

import pytest
import torch

from common.losses import FusionReconstructionLoss


def test_weighted_sum_of_modality_mse():
    target = torch.zeros(1, 3, 4, 4)
    recon = torch.stack([torch.full((4, 4), v) for v in (1.0, 2.0, 3.0)])[None]
    loss = FusionReconstructionLoss()
    assert torch.allclose(loss.terms(recon, target), torch.tensor([1.0, 4.0, 9.0]))
    assert loss((torch.zeros(1), recon), target).item() == pytest.approx(1 + 0.5 * 4 + 0.05 * 9)
    with pytest.raises(ValueError, match="differ"):
        loss(recon[:, :, :2], target)
