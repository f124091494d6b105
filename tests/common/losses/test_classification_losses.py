"""common/losses/classification.py."""

from __future__ import annotations

import torch

from common.losses import OneHotBCEWithLogitsLoss


def test_one_hot_bce_matches_torch():
    logits = torch.tensor([[0.3, -1.0], [2.0, 0.5]])
    labels = torch.tensor([1, 0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert torch.allclose(OneHotBCEWithLogitsLoss()(logits, labels), expected)
    assert torch.allclose(OneHotBCEWithLogitsLoss()(logits, labels[:, None]), expected)
