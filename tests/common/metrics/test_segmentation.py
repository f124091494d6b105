from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from common.metrics import (
    SpacingAwareHausdorffDistanceMetric,
    foreground_union,
    from_engine_all_foreground,
    from_engine_foreground_union,
)


def _one_hot(label: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(label.long(), classes).movedim(-1, 0).float()


def test_hd95_is_in_millimetres_when_the_affine_says_so():
    gt = torch.zeros(8, 8, 4)
    gt[2:5, 2:5, 1:3] = 1
    pred = torch.roll(gt, 2, dims=0)  # shifted by 2 voxels along x
    affine = torch.diag(torch.tensor([2.5, 1.0, 1.0, 1.0]))
    y_pred = [MetaTensor(_one_hot(pred, 2), affine=affine)]
    y = [MetaTensor(_one_hot(gt, 2), affine=affine)]
    voxel = SpacingAwareHausdorffDistanceMetric(percentile=95, reduction="none")
    voxel(y_pred, y, spacing=1.0)
    mm = SpacingAwareHausdorffDistanceMetric(percentile=95, reduction="none")
    mm(y_pred, y)
    assert float(voxel.aggregate().max()) == pytest.approx(2.0)
    assert float(mm.aggregate().max()) == pytest.approx(5.0)  # 2 voxels x 2.5 mm


def test_foreground_union_and_output_transforms():
    label = torch.tensor([[0, 1], [2, 3]])
    union = foreground_union(_one_hot(label, 4))
    assert torch.equal(union[1], torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
    assert torch.equal(union.sum(0), torch.ones(2, 2))
    output = [{"pred": _one_hot(label, 4), "label": _one_hot(torch.zeros(2, 2), 4)}]
    preds, labels = from_engine_foreground_union()(output)
    assert preds[0].shape == labels[0].shape == (2, 2, 2)
    everywhere, same = from_engine_all_foreground()(output)
    assert torch.equal(everywhere[0], torch.ones(4, 2, 2)) and torch.equal(same[0], output[0]["label"])
