"""Unit tests of common.metrics.binary_classification."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.metrics import aggregate_runs, binary_auroc, binary_classification_summary


def test_auroc_from_scores_with_ties():
    assert binary_auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert binary_auroc([0.5, 0.5, 0.5], [0, 1, 1]) == 0.5
    assert math.isnan(binary_auroc([0.1, 0.2], [1, 1]))
    with pytest.raises(ValueError):
        binary_auroc([0.1], [2])


def test_summary_metrics_and_hard_label_variant():
    probs = np.array([[0.9, 0.2], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    labels = [0, 1, 1, 0]
    m = binary_classification_summary(probs, labels)
    assert m["accuracy"] == 0.5
    assert m["auroc"] == pytest.approx(0.75)
    assert m["auroc_hard_labels"] == pytest.approx(0.5)
    assert m["precision_FTC"] == 0.5 and m["recall_FTC"] == 0.5 and m["f1_FA"] == 0.5


def test_aggregate_all_and_best_k():
    runs = [{"auroc": 0.6, "val_auroc": 0.9}, {"auroc": 0.8, "val_auroc": 0.5}, {"auroc": 0.7, "val_auroc": 0.7}]
    all_runs = aggregate_runs(runs)
    assert all_runs["auroc"]["mean"] == pytest.approx(0.7) and all_runs["auroc"]["n"] == 3
    best = aggregate_runs(runs, best_k=2)
    assert best["auroc"]["mean"] == pytest.approx(0.65) and best["auroc"]["n"] == 2
    with pytest.raises(ValueError):
        aggregate_runs([])


def test_class_precision_recall_f1_by_hand():
    from common.metrics import class_precision_recall_f1

    predicted = np.array([0, 0, 1, 1, 2])
    labels = np.array([0, 1, 1, 1, 0])
    assert class_precision_recall_f1(predicted, labels, 1) == pytest.approx((1.0, 2 / 3, 0.8))
    assert class_precision_recall_f1(predicted, labels, 2) == (0.0, 0.0, 0.0)
