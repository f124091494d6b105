"""Lesion-geometry melanoma scores without a network (Bolelli et al., ICPR 2024, Table 6).

The paper scores each image by how much of it the lesion covers, read off the segmentation mask, and reports the
AUC of that number as a melanoma probability: "Segm. Mask" (foreground density), "B. Box" (bounding-box area
ratio) and "B. Box 70%" (bounding boxes covering at least 70% of the image).

Decision (digest gap 9): "B. Box 70%" is read as the binary score ``1.0 if bbox_ratio >= 0.7 else 0.0``. The AUC of
a binary score is ``(sensitivity + specificity) / 2`` at that cut; the paper's rows give 0.614 (internal) and 0.642
(private) by that formula against printed AUCs of 0.622 and 0.652, so their exact definition may differ slightly
(e.g. ties broken by another quantity).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from .binary_classification import binary_auroc

__all__ = ["LESION_GEOMETRY_SCORES", "lesion_geometry_baselines", "lesion_geometry_scores"]

LESION_GEOMETRY_SCORES = ("foreground_ratio", "bbox_ratio", "bbox_70")
"""Score names of :func:`lesion_geometry_scores` (Table 6 rows: Segm. Mask, B. Box, B. Box 70%)."""

BBOX_COVERAGE = 0.7


def _binary(mask: Any) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().as_subclass(torch.Tensor).numpy()
    array = np.asarray(mask, dtype=np.float64)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected a (1, H, W) or (H, W) mask, got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError("mask contains NaN or infinite values")
    peak = float(array.max())
    return array > 0.5 * peak if peak > 0 else np.zeros(array.shape, dtype=bool)


def lesion_geometry_scores(mask: Any) -> dict[str, float]:
    """Geometry scores of one lesion mask (binarised at half its maximum).

    Args:
        mask: ``(1, H, W)`` or ``(H, W)`` numpy array or torch tensor.

    Returns:
        ``foreground_ratio`` (lesion area / image area), ``bbox_ratio`` (area of the lesion's axis-aligned bounding
        box / image area) and ``bbox_70`` (1.0 when ``bbox_ratio >= 0.7``, else 0.0). An empty mask scores 0.0
        everywhere (no lesion found).

    Raises:
        ValueError: a mask of another rank, empty array, or non-finite values.
    """
    binary = _binary(mask)
    if not binary.any():
        return dict.fromkeys(LESION_GEOMETRY_SCORES, 0.0)
    rows = np.flatnonzero(binary.any(axis=1))
    cols = np.flatnonzero(binary.any(axis=0))
    bbox_area = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
    bbox_ratio = float(bbox_area / binary.size)
    return {
        "foreground_ratio": float(binary.mean()),
        "bbox_ratio": bbox_ratio,
        "bbox_70": 1.0 if bbox_ratio >= BBOX_COVERAGE else 0.0,
    }


def lesion_geometry_baselines(masks: Iterable[Any], labels: Sequence[int] | np.ndarray) -> dict[str, float]:
    """AUC of each geometry score used directly as the melanoma score (the paper's Table 6, no network).

    Args:
        masks: one lesion mask per case (each as accepted by :func:`lesion_geometry_scores`), or a stacked
            ``(N, 1, H, W)`` / ``(N, H, W)`` array.
        labels: ``N`` labels, 1 = melanoma, 0 = any other class.

    Returns:
        ``{score name: AUC}`` for ``LESION_GEOMETRY_SCORES`` (NaN when only one class is present).

    Raises:
        ValueError: a different number of masks and labels, or labels other than 0 and 1.
    """
    scores = [lesion_geometry_scores(m) for m in masks]
    y = np.asarray(labels).reshape(-1)
    if len(scores) != len(y):
        raise ValueError(f"{len(scores)} masks but {len(y)} labels")
    return {name: binary_auroc([s[name] for s in scores], y) for name in LESION_GEOMETRY_SCORES}
