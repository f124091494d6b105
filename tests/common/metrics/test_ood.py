from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.metrics import (
    MultiLevelRule,
    auc_after_rejection,
    bootstrap_ci,
    energy,
    energy_score,
    ensemble_uncertainties,
    fit_threshold,
    fpr_at_threshold,
    fpr_at_tpr,
    max_softmax_probability,
    roc_auc,
)


def test_energy_matches_eq1_and_tends_to_minus_max_logit():
    logits = torch.tensor([[1.0, 2.0, 0.5], [10.0, -3.0, 0.0]])
    expected = -torch.log(torch.exp(logits).sum(-1))
    assert torch.allclose(energy(logits, temperature=1.0).float(), expected)
    # T = 0.001 (the paper): E ~ -max logit, computed without overflow
    assert torch.allclose(energy(logits).float(), -logits.max(-1).values, atol=1e-3)
    with pytest.raises(ValueError):
        energy(logits, temperature=0)


def test_energy_sign_convention_higher_score_is_in_distribution():
    confident = torch.tensor([[8.0, 0.0, 0.0]])  # large logits: an in-distribution-like input
    flat = torch.tensor([[0.1, 0.0, 0.05]])  # small logits: OOD-like
    assert energy(confident) < energy(flat)  # ID has LOWER energy ...
    assert energy_score(confident) > energy_score(flat)  # ... so the detection score -E is HIGHER for ID
    assert roc_auc(energy_score(confident).numpy(), energy_score(flat).numpy()) == 1.0


def test_max_softmax_probability():
    msp = max_softmax_probability(torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]]))
    assert msp[0] == pytest.approx(1 / 3) and msp[1] > 0.98


def test_ensemble_uncertainties_zero_when_members_agree_and_match_formulas():
    agree = torch.tensor([[0.7, 0.2, 0.1]]).repeat(5, 1, 1)
    out = ensemble_uncertainties(agree)
    for key in ("variance", "weighted_variance", "epistemic"):
        assert out[key].abs().max() < 1e-9
    members = torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]])  # total disagreement between two members
    out = ensemble_uncertainties(members)
    assert torch.allclose(out["mean"], torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64))
    assert out["variance"].item() == pytest.approx(0.5)  # 0.25 + 0.25 + 0
    assert out["weighted_variance"].item() == pytest.approx(0.25)  # 0.5 * 0.25 * 2
    assert out["epistemic"].item() == pytest.approx(math.log(2))  # H(mean) - mean H(members) = log 2 - 0
    with pytest.raises(ValueError):
        ensemble_uncertainties(torch.rand(3, 3))


def test_fit_threshold_keeps_the_requested_fraction():
    scores = np.random.default_rng(0).normal(size=1000)
    for keep in (0.95, 0.8):
        assert (scores >= fit_threshold(scores, keep)).mean() == pytest.approx(keep)
    with pytest.raises(ValueError):
        fit_threshold(scores, 1.5)
    with pytest.raises(ValueError):
        fit_threshold([], 0.9)


def test_multilevel_rule_keeps_fraction_with_equal_fraction_per_exit():
    rng = np.random.default_rng(1)
    calibration = rng.normal(size=(2000, 3)) + np.array([0.0, 5.0, -3.0])  # exits on different scales
    rule = MultiLevelRule(calibration)
    for keep in (0.95, 0.8):
        kept = rule.is_in_distribution(calibration, keep)
        assert kept.mean() == pytest.approx(keep, abs=0.002)
        assert np.array_equal(kept, rule.combined(calibration) >= rule.combined_threshold(keep))
        # every exit alone rejects the same fraction of the calibration data
        thresholds = rule.exit_thresholds(keep)
        per_exit = [(calibration[:, k] < thresholds[k]).mean() for k in range(3)]
        assert max(per_exit) - min(per_exit) < 1e-9
    # an input failing one exit only is OOD
    assert not rule.is_in_distribution(np.array([[10.0, 10.0, -100.0]]), 0.95)[0]
    with pytest.raises(ValueError):
        MultiLevelRule(np.zeros(5))


def test_roc_auc_and_fpr():
    assert roc_auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert roc_auc([0, 1], [2, 3]) == 0.0
    assert roc_auc([1, 1], [1, 1]) == 0.5
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 5, 30).astype(float), rng.integers(0, 5, 20).astype(float)  # many ties
    assert roc_auc(a, b) == pytest.approx(mannwhitneyu(a, b).statistic / (30 * 20))
    with pytest.raises(ValueError):
        roc_auc([], [1])
    assert fpr_at_threshold([0.1, 0.5, 0.9, 1.0], 0.8) == 0.5
    id_scores = np.arange(100) / 100
    assert fpr_at_tpr(id_scores, np.array([0.0, 0.02, 0.5, 0.99]), 0.95) == 0.5


def test_bootstrap_ci_contains_the_estimate_and_shrinks_with_data():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1, 1, 200), rng.normal(0, 1, 200)
    low, high = bootstrap_ci(roc_auc, a, b, num_samples=200)
    assert low < roc_auc(a, b) < high
    low2, high2 = bootstrap_ci(roc_auc, a, b, num_samples=200, resample="both")
    assert high2 - low2 > high - low  # resampling both sets adds the OOD sampling variance
    with pytest.raises(ValueError):
        bootstrap_ci(roc_auc, a, b, resample="ood")


def test_auc_after_rejection():
    labels = np.array([1, 1, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.1, 0.2, 0.05])  # the last malignant image is missed
    assert auc_after_rejection(labels, scores) < 1.0
    assert auc_after_rejection(labels, scores, keep_mask=[1, 1, 1, 1, 0]) == 1.0
    assert math.isnan(auc_after_rejection(labels, scores, keep_mask=[1, 1, 0, 0, 0]))
