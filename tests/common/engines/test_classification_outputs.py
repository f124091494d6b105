"""Reading probabilities, labels and source names off classification engine outputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from common.engines import ProbabilityCollector, output_labels, output_probabilities, source_names


def test_collated_and_decollated_outputs_give_the_same_values():
    collated = {"pred": torch.tensor([[0.2, 0.8], [0.6, 0.4]]), "label": torch.tensor([[0.0, 1.0], [1.0, 0.0]])}
    decollated = [
        {"pred": torch.tensor([0.2, 0.8]), "label": torch.tensor(1)},
        {"pred": torch.tensor([0.6, 0.4]), "label": torch.tensor([0])},
    ]
    for output in (collated, decollated):
        assert np.allclose(np.stack(output_probabilities(output)), [[0.2, 0.8], [0.6, 0.4]])
        assert output_labels(output) == [1, 0]
    batch = {"image": MetaTensor(torch.zeros(2, 1), meta={"filename_or_obj": ["/a/x.png", "/a/y.png"]})}
    assert source_names(batch, 2) == ["/a/x.png", "/a/y.png"]
    assert source_names([{"image": torch.zeros(1)}], 1) == ["region_0"]


def test_collector_gathers_an_epoch_and_leaves_the_report_to_subclasses():
    collector = ProbabilityCollector()
    output = [{"pred": torch.tensor([0.3, 0.7]), "label": torch.tensor(1)}]
    engine = SimpleNamespace(state=SimpleNamespace(output=output, batch=[{"image": torch.zeros(1)}]))
    collector._collect(engine)
    collector._collect(engine)
    assert len(collector.probs) == 2 and collector.labels == [1, 1] and len(collector.cases) == 2
    collector._reset()
    assert collector.probs == [] and collector.labels == []
    with pytest.raises(NotImplementedError):
        collector(engine)
