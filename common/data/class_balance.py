"""Loss weights from the label counts of a classification datalist."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .errors import DatasetError

__all__ = ["class_weights"]


def class_weights(datalist: Sequence[Mapping[str, object]], num_classes: int = 3) -> list[float]:
    """Per-class loss weights giving every class equal influence: ``n / (num_classes * n_c)``.

    Raises:
        DatasetError: a class without any item (its weight would be infinite).
    """
    labels = np.asarray([int(i["label"]) for i in datalist], dtype=int)
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    if (counts == 0).any():
        raise DatasetError(f"classes {np.flatnonzero(counts == 0).tolist()} have no training images: {counts.tolist()}")
    return (len(labels) / (num_classes * counts)).astype(float).tolist()
