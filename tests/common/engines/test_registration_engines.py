from __future__ import annotations

import pytest
import torch
from monai.engines import SupervisedEvaluator
from torch import nn

from common.engines import PairTimer, PrepareRegistrationBatch


def test_prepare_registration_batch_collects_optional_labels():
    batch = {"image": torch.rand(2, 2, 4, 4), "moving": torch.rand(2, 1, 4, 4), "fixed": torch.rand(2, 1, 4, 4)}
    pair, targets = PrepareRegistrationBatch()(batch)
    assert pair.shape == (2, 2, 4, 4) and set(targets) == {"moving", "fixed"}
    batch.update(label=torch.ones(2, 1, 4, 4), fixed_label=torch.ones(2, 1, 4, 4))
    _, targets = PrepareRegistrationBatch()(batch)
    assert set(targets) == {"moving", "fixed", "moving_label", "fixed_label"}
    with pytest.raises(KeyError, match="moving"):
        PrepareRegistrationBatch()({"image": batch["image"]})


def test_pair_timer_reports_seconds_per_pair():
    data = [{"image": torch.rand(2, 4, 4)} for _ in range(3)]
    loader = torch.utils.data.DataLoader(data, batch_size=2)
    evaluator = SupervisedEvaluator(device=torch.device("cpu"), val_data_loader=loader, network=nn.Conv2d(2, 2, 1),
                                    val_handlers=[PairTimer()])  # fmt: skip
    evaluator.run()
    assert 0 < evaluator.state.metrics["seconds_per_pair"] < 1
