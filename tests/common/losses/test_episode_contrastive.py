"""InfoNCE (paper and standard forms) and the Guided-SET-DCL loss."""

from __future__ import annotations

import math

import pytest
import torch

from common.losses import INFONCE_FORMS, GuidedSETDCLLoss, info_nce
from common.networks import GuidedSETDCLNet


def test_infonce_forms_by_hand():
    a = torch.tensor([1.0, 0.0])
    p = torch.tensor([1.0, 0.0])
    n = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # orthogonal negatives: a.n = 0
    # paper: -a.p/tau + log sum exp(a.n/tau) = -1/0.5 + log 2
    assert info_nce(a, p, n, tau=0.5, form="paper").item() == pytest.approx(-2 + math.log(2))
    # standard: -log(e^2 / (e^2 + 2))
    assert info_nce(a, p, n, tau=0.5, form="standard").item() == pytest.approx(-math.log(math.e**2 / (math.e**2 + 2)))
    assert set(INFONCE_FORMS) == {"paper", "standard"}
    with pytest.raises(ValueError, match="form"):
        info_nce(a, p, n, form="nt-xent")


def test_infonce_decreases_as_the_anchor_moves_to_the_positive():
    p, n = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    far, near = torch.tensor([0.2, 1.0, 0.0]), torch.tensor([1.0, 0.1, 0.0])
    for form in INFONCE_FORMS:
        assert info_nce(near, p, n, form=form) < info_nce(far, p, n, form=form)


def test_infonce_masks_negatives_and_anchors():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    n = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]])
    only_first = info_nce(a, p, n, form="paper", negative_mask=torch.tensor([[True, False], [True, True]]),
                          anchor_mask=torch.tensor([True, False]))  # fmt: skip
    assert only_first.item() == pytest.approx(-10.0 + 0.0)  # anchor 0, its orthogonal negative only
    none = info_nce(a, p, n, anchor_mask=torch.tensor([False, False]))
    assert none.item() == 0.0


def test_loss_combines_ce_and_contrastive_parts_with_the_authors_weights():
    torch.manual_seed(0)
    net = GuidedSETDCLNet(features=(4, 8), refine_iterations=1, grid=2).train()
    x = torch.rand(2, 4, 16, 16)
    x[:, 1] = (x[:, 1] > 0.5).float()
    x[:, 3] = (x[:, 3] > 0.5).float()
    unrelated = torch.cat([torch.rand(2, 3, 16, 16), torch.ones(2, 3, 16, 16)], 1)
    net(x, unrelated)
    target = x[:, 3:4]
    loss = GuidedSETDCLLoss()
    parts = loss(net.episode_outputs, target)
    expected = 0.9 * parts["ce_loss"] + 0.1 * (
        0.08 * parts["global_loss"] + 0.12 * parts["patch_loss"] + 0.06 * parts["context_loss"]
    )
    torch.testing.assert_close(parts["loss"], expected)
    parts["loss"].backward()
    assert net.head.weight.grad is not None and net.context.weight.grad is not None
    with pytest.raises(ValueError, match="infonce"):
        GuidedSETDCLLoss(infonce="other")
