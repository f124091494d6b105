from __future__ import annotations

import math

import pytest
import torch

from common.metrics import (
    FoldingHandler,
    FoldingMetric,
    LabelDiceHandler,
    LabelDiceMetric,
    folding_percentage,
    jacobian_determinant,
    label_dice,
)


def test_label_dice_over_labels_present_in_both():
    fixed = torch.zeros(1, 1, 4, 4)
    fixed[..., :2, :2] = 1
    fixed[..., 2:, 2:] = 2
    pred = fixed.clone()
    pred[..., 2:, 2:] = 3  # label 2 missing in pred, label 3 missing in fixed: both left out
    assert label_dice(pred, fixed).item() == 1.0
    half = fixed.clone()
    half[..., 0, :2] = 0  # label 1: 2 of 4 voxels -> Dice 2*2/(2+4)
    assert math.isclose(label_dice(half, fixed).item(), (2 * 2 / 6 + 1) / 2)
    assert torch.isnan(label_dice(torch.zeros(1, 1, 4, 4), fixed)).all()
    with pytest.raises(ValueError, match="shape"):
        label_dice(fixed, fixed[..., :3])


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_jacobian_of_identity_scaling_and_folding(spatial_dims: int):
    shape = (6,) * spatial_dims
    zero = torch.zeros(1, spatial_dims, *shape)
    assert torch.allclose(jacobian_determinant(zero), torch.ones(1, *shape, dtype=torch.float64))
    grid = torch.stack(torch.meshgrid(*[torch.arange(6.0)] * spatial_dims, indexing="ij"))[None]
    scaled = 0.5 * grid  # x -> 1.5 x: determinant 1.5^d
    assert torch.allclose(jacobian_determinant(scaled), torch.full((1, *shape), 1.5**spatial_dims, dtype=torch.float64))
    flipped = torch.zeros_like(grid)
    flipped[:, 0] = -2.0 * grid[:, 0]  # mirror along axis 0: determinant -1, folded everywhere
    assert folding_percentage(flipped).item() == 100.0
    assert folding_percentage(zero).item() == 0.0
    with pytest.raises(ValueError, match="displacement"):
        jacobian_determinant(torch.zeros(1, 1, 4, 4))


def test_cumulative_metrics_and_handlers():
    labels = torch.zeros(1, 4, 4)
    labels[:, 1:3, 1:3] = 1
    dice = LabelDiceMetric()
    dice([labels, labels], [labels, labels])
    assert dice.aggregate().item() == 1.0 and dice.get_buffer().shape == (2, 1)
    folding = FoldingMetric()
    folding([torch.zeros(2, 4, 4)])
    assert folding.aggregate().item() == 0.0
    assert isinstance(LabelDiceHandler().metric_fn, LabelDiceMetric)
    assert isinstance(FoldingHandler().metric_fn, FoldingMetric)
