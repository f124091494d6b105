"""Out-of-distribution scores and their evaluation (Karlsson et al., ICPR 2024).

Scores (all computed per image):

- maximum softmax probability (Hendrycks & Gimpel): :func:`max_softmax_probability`;
- energy ``E(x) = -T log sum_i exp(f_i(x) / T)`` (the paper's Eq. 1, T = 0.001): :func:`energy`; in-distribution
  images have LOW energy, so the score used for detection is ``-E`` (:func:`energy_score`, higher = ID);
- the multi-level (multi-exit) rule: an image is ID only if its score passes every exit's threshold, the thresholds
  removing an equal fraction of the calibration data at each exit (:class:`MultiLevelRule`);
- deep-ensemble uncertainties of softmax outputs (Eqs. 3-5): variance, weighted variance and epistemic entropy
  (mutual information) (:func:`ensemble_uncertainties`); HIGH uncertainty = OOD.

Evaluation convention: every function below takes "ID scores" where higher means more in-distribution (negate
uncertainties first). AUROC counts ID as the positive class; FPR is the fraction of OOD images accepted as ID.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = [
    "MultiLevelRule",
    "auc_after_rejection",
    "bootstrap_ci",
    "energy",
    "energy_score",
    "ensemble_uncertainties",
    "fit_threshold",
    "fpr_at_threshold",
    "fpr_at_tpr",
    "max_softmax_probability",
    "roc_auc",
]


def max_softmax_probability(logits: torch.Tensor) -> torch.Tensor:
    """Largest softmax probability over the last (class) axis; higher = in-distribution."""
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1).max(dim=-1).values


def energy(logits: torch.Tensor, temperature: float = 0.001) -> torch.Tensor:
    """The paper's Eq. 1, ``E = -T * logsumexp(f / T)`` over the last axis (low for in-distribution inputs).

    Computed in float64 with ``logsumexp`` so that T = 0.001 does not overflow; as T -> 0, E -> -max_i f_i.

    Raises:
        ValueError: non-positive temperature.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = torch.as_tensor(logits, dtype=torch.float64)
    return -temperature * torch.logsumexp(logits / temperature, dim=-1)


def energy_score(logits: torch.Tensor, temperature: float = 0.001) -> torch.Tensor:
    """``-E``: the negative energy, higher = in-distribution (the convention of Liu et al. 2020)."""
    return -energy(logits, temperature)


def ensemble_uncertainties(member_probs: torch.Tensor, eps: float = 1e-12) -> dict[str, torch.Tensor]:
    """Uncertainties of an average ensemble from its members' softmax outputs (Eqs. 2-5).

    Args:
        member_probs: ``[N members, B, K]`` class probabilities.
        eps: floor inside the logarithms (``0 log 0 = 0``).

    Returns:
        ``{"mean": F [B, K], "variance": U_var [B], "weighted_variance": U_weightedVar [B],
        "epistemic": U_epi [B]}``; all uncertainties are 0 when every member agrees, and high means OOD.

    Raises:
        ValueError: input not of rank 3.
    """
    p = torch.as_tensor(member_probs, dtype=torch.float64)
    if p.ndim != 3:
        raise ValueError(f"member_probs must be [members, batch, classes], got shape {tuple(p.shape)}")
    mean = p.mean(dim=0)
    class_var = ((p - mean) ** 2).mean(dim=0)  # population variance over members, per class
    entropy_of_mean = -(mean * torch.log(mean.clamp_min(eps))).sum(dim=-1)
    mean_entropy = -(p * torch.log(p.clamp_min(eps))).sum(dim=-1).mean(dim=0)
    return {
        "mean": mean,
        "variance": class_var.sum(dim=-1),
        "weighted_variance": (mean * class_var).sum(dim=-1),
        "epistemic": (entropy_of_mean - mean_entropy).clamp_min(0.0),
    }


def fit_threshold(calibration_scores: Sequence[float] | np.ndarray, keep: float) -> float:
    """Threshold ``t`` such that a fraction ``keep`` of the calibration scores satisfies ``score >= t``.

    The paper fits its thresholds where 95 % (or 80 %) of the POCUS training images are detected as ID.

    Raises:
        ValueError: ``keep`` outside (0, 1] or no scores.
    """
    scores = np.sort(np.asarray(calibration_scores, dtype=np.float64).reshape(-1))
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    if scores.size == 0:
        raise ValueError("cannot fit a threshold on no scores")
    # the k-th smallest score where k = number rejected: exactly round(n * keep) scores are >= it (no ties)
    rejected = int(round(scores.size * (1.0 - keep)))
    return float(scores[min(rejected, scores.size - 1)])


class MultiLevelRule:
    """The paper's multi-exit decision: ID only if the score of EVERY exit is above that exit's threshold.

    The thresholds remove an equal fraction of the calibration data at each exit. Each exit's score is mapped to
    its empirical CDF on the calibration data; the combined score is the minimum over exits of that CDF value, so
    "combined >= u" means "every exit's score is at or above its own u-quantile". One threshold on the combined
    score therefore gives per-exit thresholds that are the same quantile of each exit's calibration scores, and the
    combined score is also the single score used for ROC analysis.

    Args:
        calibration_scores: ``[n, exits]`` ID scores (higher = ID, e.g. ``-E`` per exit) of calibration images.

    Raises:
        ValueError: not a 2D array with at least one row.
    """

    def __init__(self, calibration_scores: np.ndarray) -> None:
        scores = np.asarray(calibration_scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[0] == 0:
            raise ValueError(f"calibration_scores must be [n, exits] with n > 0, got shape {scores.shape}")
        self.calibration = scores
        self.sorted = np.sort(scores, axis=0)

    @property
    def num_exits(self) -> int:  # noqa: D102
        return int(self.sorted.shape[1])

    def combined(self, scores: np.ndarray) -> np.ndarray:
        """Minimum over exits of the empirical CDF value of each exit's score: ``[n, exits] -> [n]`` in [0, 1]."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1, self.num_exits)
        n = self.sorted.shape[0]
        cdf = np.stack(
            [np.searchsorted(self.sorted[:, k], scores[:, k], side="right") / n for k in range(self.num_exits)], 1
        )
        return cdf.min(axis=1)

    def combined_threshold(self, keep: float) -> float:
        """Threshold on :meth:`combined` that keeps a fraction ``keep`` of the calibration data."""
        return fit_threshold(self.combined(self.calibration), keep)

    def exit_thresholds(self, keep: float) -> list[float]:
        """Per-exit score thresholds equivalent to :meth:`combined_threshold` (same quantile at every exit)."""
        u = self.combined_threshold(keep)
        n = self.sorted.shape[0]
        index = min(max(int(np.ceil(u * n)) - 1, 0), n - 1)  # smallest score whose CDF value reaches u
        return [float(self.sorted[index, k]) for k in range(self.num_exits)]

    def is_in_distribution(self, scores: np.ndarray, keep: float) -> np.ndarray:
        """Boolean ``[n]``: every exit's score passes its threshold."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1, self.num_exits)
        return (scores >= np.asarray(self.exit_thresholds(keep))[None]).all(axis=1)


def roc_auc(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    """Area under the ROC curve separating ID (positive) from OOD by ``score`` (higher = ID); ties count 1/2.

    This is the Mann-Whitney U statistic divided by ``n_id * n_ood``: 1 = perfect, 0.5 = chance, 0 = inverted.

    Raises:
        ValueError: an empty group.
    """
    a = np.asarray(id_scores, dtype=np.float64).reshape(-1)
    b = np.asarray(ood_scores, dtype=np.float64).reshape(-1)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"AUROC needs both groups, got {a.size} ID and {b.size} OOD scores")
    # for each ID score: OOD scores strictly below it count 1, equal ones 1/2 (sorting once keeps bootstraps fast)
    b = np.sort(b)
    below = np.searchsorted(b, a, side="left")
    ties = np.searchsorted(b, a, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (a.size * b.size))


def fpr_at_threshold(ood_scores: np.ndarray, threshold: float) -> float:
    """Fraction of OOD images accepted as ID (``score >= threshold``)."""
    b = np.asarray(ood_scores, dtype=np.float64).reshape(-1)
    return float((b >= threshold).mean())


def fpr_at_tpr(id_scores: np.ndarray, ood_scores: np.ndarray, tpr: float = 0.95) -> float:
    """FPR at the threshold that keeps a fraction ``tpr`` of the given ID scores (the usual FPR95)."""
    return fpr_at_threshold(ood_scores, fit_threshold(id_scores, tpr))


def bootstrap_ci(  # noqa: D417
    statistic: Callable[[np.ndarray, np.ndarray], float],
    id_scores: np.ndarray,
    ood_scores: np.ndarray,
    num_samples: int = 1000,
    seed: int = 0,
    resample: str = "id",
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``statistic(id_scores, ood_scores)``.

    Args:
        statistic: e.g. :func:`roc_auc`.
        id_scores, ood_scores: 1D score arrays (or any arrays indexed along axis 0).
        num_samples: bootstrap resamples (the paper: 1000).
        seed: random seed.
        resample: ``"id"`` resamples only the ID set (the paper: "bootstrapping on the ID test set"), ``"both"``
            resamples ID and OOD sets independently.
        level: confidence level.

    Raises:
        ValueError: unknown ``resample``.
    """
    if resample not in ("id", "both"):
        raise ValueError(f"resample must be 'id' or 'both', got '{resample}'")
    a, b = np.asarray(id_scores), np.asarray(ood_scores)
    rng = np.random.default_rng(seed)
    values = np.empty(num_samples)
    for i in range(num_samples):
        ai = a[rng.integers(0, len(a), len(a))]
        bi = b[rng.integers(0, len(b), len(b))] if resample == "both" else b
        values[i] = statistic(ai, bi)
    tail = (1.0 - level) / 2.0
    return float(np.quantile(values, tail)), float(np.quantile(values, 1.0 - tail))


def auc_after_rejection(labels: np.ndarray, positive_scores: np.ndarray, keep_mask: np.ndarray | None = None) -> float:
    """Binary classification AUC (e.g. malignant vs the rest by P(malignant)) on the images that are kept.

    Returns NaN when the kept images hold only one class.
    """
    labels = np.asarray(labels).astype(bool).reshape(-1)
    scores = np.asarray(positive_scores, dtype=np.float64).reshape(-1)
    if keep_mask is not None:
        keep = np.asarray(keep_mask, dtype=bool).reshape(-1)
        labels, scores = labels[keep], scores[keep]
    if labels.all() or not labels.any():
        return float("nan")
    return roc_auc(scores[labels], scores[~labels])
