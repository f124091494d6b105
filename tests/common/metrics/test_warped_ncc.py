from __future__ import annotations

import pytest
import torch

from common.metrics import WarpedNCCMetric, warped_local_ncc


def _pair(shift: int) -> torch.Tensor:
    torch.manual_seed(0)
    source = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 40, 40), 3, 1, 1)[0, 0]
    target = torch.roll(source, shifts=shift, dims=1)
    return torch.stack([source, target])


def test_the_right_affine_scores_higher_than_the_identity():
    pair = _pair(3)
    right = torch.tensor([1.0, 0.0, 3.0, 0.0, 1.0, 0.0])
    identity = torch.eye(3)
    assert warped_local_ncc(pair, right) > warped_local_ncc(pair, identity) + 0.2


def test_metric_averages_decollated_items_and_needs_one():
    metric = WarpedNCCMetric(window=5)
    metric.reset()
    metric.update([{"image": _pair(0), "pred": torch.tensor([1.0, 0, 0, 0, 1, 0])}])
    assert metric.compute() > 0.9
    metric.reset()
    with pytest.raises(ValueError, match="no pair"):
        metric.compute()
