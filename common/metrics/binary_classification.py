"""Binary classification metrics from probabilities, and the aggregation of repeated runs (mean +- sd, best k of n).

AUROC is computed from the positive-class *probabilities* (rank statistic with tie handling). The hard-label
variant (AUROC of the argmax labels, which equals balanced accuracy) is reported separately and only to compare with
published numbers computed that way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["aggregate_runs", "binary_auroc", "binary_classification_summary", "class_precision_recall_f1"]


def binary_auroc(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` in {0, 1} (Mann-Whitney U, ties count one half).

    Returns NaN when only one class is present.

    Raises:
        ValueError: for different lengths or labels other than 0 and 1.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got {sorted(set(y.tolist()))}")
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def class_precision_recall_f1(predicted: np.ndarray, labels: np.ndarray, c: int) -> tuple[float, float, float]:
    """Precision, recall and F1 of class ``c`` (one-vs-rest) for predicted and true class indices; 0 when undefined."""
    tp = int(((predicted == c) & (labels == c)).sum())
    fp = int(((predicted == c) & (labels != c)).sum())
    fn = int(((predicted != c) & (labels == c)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def binary_classification_summary(
    probabilities: np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str] = ("FA", "FTC"),
) -> dict[str, float]:
    """Metrics of a two-class prediction.

    Args:
        probabilities: ``(n, 2)`` per-class probabilities (the paper: two sigmoid outputs); the predicted class is the
            larger one and the AUROC score is the positive (second) class's probability.
        labels: ``n`` class indices in {0, 1}.
        class_names: names of class 0 and class 1.

    Returns:
        ``auroc``, ``auroc_hard_labels``, ``accuracy`` and per class ``precision_<name>``, ``recall_<name>``,
        ``f1_<name>`` (each class in turn as the positive class; 0 when undefined), ``num_cases``.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"probabilities must have shape (n, 2), got {p.shape}")
    y = np.asarray(labels).reshape(-1).astype(int)
    predicted = p.argmax(1)
    result = {
        "auroc": binary_auroc(p[:, 1], y),
        "auroc_hard_labels": binary_auroc(predicted.astype(float), y),
        "accuracy": float((predicted == y).mean()) if len(y) else float("nan"),
    }
    for c, name in enumerate(class_names):
        precision, recall, f1 = class_precision_recall_f1(predicted, y, c)
        result.update({f"precision_{name}": precision, f"recall_{name}": recall, f"f1_{name}": f1})
    result["num_cases"] = float(len(y))
    return result


def aggregate_runs(
    runs: Sequence[Mapping[str, float]],
    best_k: int | None = None,
    select_by: str = "val_auroc",
) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of every metric over repeated runs.

    Args:
        runs: one metrics dict per run (same keys).
        best_k: keep only the ``best_k`` runs with the highest ``select_by`` (the paper reports the best 5 of 10 runs
            without saying how they were chosen; choosing on validation keeps test data out of the choice).
        select_by: the selection key (a validation metric).

    Returns:
        ``{metric: {"mean", "sd", "n"}}``.

    Raises:
        ValueError: no runs, or ``select_by`` missing when ``best_k`` is given.
    """
    if not runs:
        raise ValueError("no runs to aggregate")
    chosen = list(runs)
    if best_k is not None:
        if any(select_by not in r for r in runs):
            raise ValueError(f"every run needs '{select_by}' to select the best {best_k}")
        chosen = sorted(runs, key=lambda r: -float(r[select_by]))[: max(1, best_k)]
    result = {}
    for key in chosen[0]:
        values = np.asarray([float(r[key]) for r in chosen], dtype=np.float64)
        values = values[np.isfinite(values)]
        result[key] = {
            "mean": float(values.mean()) if values.size else float("nan"),
            "sd": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            "n": int(values.size),
        }
    return result
