"""Threshold metrics, the validation-ROC threshold and the multi-class summary, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from common.metrics import multiclass_summary, roc_optimal_threshold, threshold_metrics


def test_threshold_metrics_by_hand():
    scores = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1]
    labels = [1, 1, 1, 0, 0, 0]
    m = threshold_metrics(scores, labels, 0.5)  # TP 2, FN 1, FP 1, TN 2
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == pytest.approx(2 / 3)
    assert m["precision"] == pytest.approx(2 / 3) and m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert threshold_metrics([0.1, 0.2], [0, 0], 0.5)["precision"] == 0.0
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        threshold_metrics([0.1], [2])


def test_roc_threshold_is_the_point_closest_to_the_corner():
    scores = np.array([0.95, 0.7, 0.4, 0.35, 0.2, 0.1])
    labels = np.array([1, 1, 1, 0, 0, 0])
    assert roc_optimal_threshold(scores, labels) == pytest.approx(0.4)  # TPR 1, FPR 0
    noisy = roc_optimal_threshold([0.9, 0.3, 0.6, 0.2], [1, 1, 0, 0])
    assert noisy in (0.3, 0.6, 0.9)
    assert roc_optimal_threshold([0.2, 0.4], [1, 1]) == 0.5


def test_multiclass_summary_by_hand():
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    labels = [0, 1, 1, 2]
    m = multiclass_summary(probs, labels, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["recall_b"] == pytest.approx(0.5) and m["precision_a"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["auc_c"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="do not match"):
        multiclass_summary(probs, labels, ["a", "b"])
