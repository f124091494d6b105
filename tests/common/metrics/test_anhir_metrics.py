from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from common.metrics import ANHIR_AGGREGATES, ANHIRMetric, anhir_aggregates, anhir_pair_scores, relative_tre


def test_relative_tre_and_pair_scores():
    r = relative_tre([[0, 0], [3, 4]], [[0, 0], [0, 0]], 10.0)
    assert np.allclose(r, [0.0, 0.5])
    with pytest.raises(ValueError):
        relative_tre([[0, 0]], [[0, 0], [1, 1]], 10.0)
    s = anhir_pair_scores(np.array([0.1, 0.3, 0.2]), np.array([0.2, 0.2, 0.2]))
    assert s == pytest.approx({"MrTRE": 0.2, "ArTRE": 0.2, "robustness": 1 / 3})


def test_aggregates():
    pairs = [{"MrTRE": 1.0, "ArTRE": 2.0, "robustness": 1.0}, {"MrTRE": 3.0, "ArTRE": 4.0, "robustness": 0.0},
             {"MrTRE": 8.0, "ArTRE": 9.0, "robustness": 0.5}]  # fmt: skip
    agg = anhir_aggregates(pairs)
    assert agg == pytest.approx({"robustness": 0.5, "MMrTRE": 3.0, "AMrTRE": 4.0, "MArTRE": 4.0, "AArTRE": 5.0})
    assert set(agg) == set(ANHIR_AGGREGATES)


def test_ignite_metric_with_identity_baseline():
    item = {"fixed_landmarks": np.array([[10.0, 10.0], [20.0, 20.0]]),
            "moving_landmarks": np.array([[0.0, 0.0], [5.0, 5.0]]),
            "warped_landmarks": np.array([[10.0, 10.0], [25.0, 20.0]]), "fixed_size": np.array([30, 40])}  # fmt: skip
    metric = ANHIRMetric("robustness")
    metric._engine = SimpleNamespace(state=SimpleNamespace(metric_details={}))
    metric.reset()
    metric.update([item])
    assert metric.compute() == 1.0
    assert metric._engine.state.metric_details["robustness"].shape == (1, 1)
    mm = ANHIRMetric("MMrTRE")
    mm.reset()
    mm.update([item])
    assert mm.compute() == pytest.approx(np.median([0.0, 5.0 / 50.0]))
    neg = ANHIRMetric("MMrTRE", negate=True)
    neg.reset()
    neg.update([item])
    assert neg.compute() == pytest.approx(-mm.compute())
    ident = ANHIRMetric("robustness", identity=True)
    ident.reset()
    ident.update([item])
    assert ident.compute() == 0.0
    with pytest.raises(ValueError):
        ANHIRMetric("median")
