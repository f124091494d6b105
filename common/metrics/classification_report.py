"""Threshold metrics of a detector read off a multi-class classifier, and per-class metrics of a multi-class one.

Bolelli et al. report melanoma AUC and precision / recall (sensitivity) / specificity / F1 / accuracy at a threshold
of 0.5 and at the ROC point closest to (0, 1) chosen on the validation split; Kanekar et al. report accuracy and
per-class precision / recall / F1 of four classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .binary_classification import binary_auroc, class_precision_recall_f1

__all__ = ["multiclass_summary", "roc_optimal_threshold", "threshold_metrics"]


def _binary_inputs(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray):
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1).astype(int)
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got {sorted(set(y.tolist()))}")
    return s, y


def roc_optimal_threshold(scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """The score threshold whose ROC point is closest to (FPR 0, TPR 1): argmin sqrt(FPR^2 + (1 - TPR)^2).

    Every distinct score is a candidate (``score >= t`` is positive). Returns 0.5 when only one class is present.
    """
    s, y = _binary_inputs(scores, labels)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    candidates = np.unique(s)
    positive = s[None, :] >= candidates[:, None]
    tpr = (positive & (y == 1)).sum(1) / n_pos
    fpr = (positive & (y == 0)).sum(1) / n_neg
    return float(candidates[int(np.argmin(np.hypot(fpr, 1 - tpr)))])


def threshold_metrics(
    scores: Sequence[float] | np.ndarray, labels: Sequence[int] | np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """``precision``, ``sensitivity`` (recall), ``specificity``, ``f1``, ``accuracy`` of ``score >= threshold``.

    An undefined ratio (no predicted or no actual positives / negatives) is 0.
    """
    s, y = _binary_inputs(scores, labels)
    predicted = s >= threshold
    tp = int((predicted & (y == 1)).sum())
    fp = int((predicted & (y == 0)).sum())
    fn = int((~predicted & (y == 1)).sum())
    tn = int((~predicted & (y == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    sensitivity = tp / (tp + fn) if tp + fn else 0.0
    return {
        "precision": precision,
        "sensitivity": sensitivity,
        "specificity": tn / (tn + fp) if tn + fp else 0.0,
        "f1": 2 * precision * sensitivity / (precision + sensitivity) if precision + sensitivity else 0.0,
        "accuracy": (tp + tn) / len(y) if len(y) else float("nan"),
    }


def multiclass_summary(
    probabilities: np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro precision / recall / F1 and per class ``precision_<c>``, ``recall_<c>``,
    ``f1_<c>`` of the argmax prediction; macro averages run over the classes present in ``labels``.

    Also ``auc_<c>``: one-vs-rest AUC of each present class's probability (NaN when it cannot be computed).
    """  # noqa: D205
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).reshape(-1).astype(int)
    if p.ndim != 2 or p.shape[1] != len(class_names) or p.shape[0] != len(y):
        raise ValueError(f"probabilities {p.shape} do not match {len(y)} labels and {len(class_names)} classes")
    predicted = p.argmax(1)
    result: dict[str, float] = {"accuracy": float((predicted == y).mean()) if len(y) else float("nan")}
    present = sorted(set(y.tolist()))
    per_class = {"precision": [], "recall": [], "f1": []}
    for c, name in enumerate(class_names):
        precision, recall, f1 = class_precision_recall_f1(predicted, y, c)
        result.update({f"precision_{name}": precision, f"recall_{name}": recall, f"f1_{name}": f1})
        if c in present:
            per_class["precision"].append(precision)
            per_class["recall"].append(recall)
            per_class["f1"].append(f1)
            result[f"auc_{name}"] = binary_auroc(p[:, c], (y == c).astype(int))
    result["balanced_accuracy"] = float(np.mean(per_class["recall"])) if present else float("nan")
    for key, values in per_class.items():
        result[f"macro_{key}"] = float(np.mean(values)) if values else float("nan")
    return result
