"""Segmentation metric helpers that MONAI's handlers do not provide directly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from monai.handlers import from_engine
from monai.metrics import HausdorffDistanceMetric

__all__ = [
    "SpacingAwareHausdorffDistanceMetric",
    "foreground_union",
    "from_engine_all_foreground",
    "from_engine_foreground_union",
]


class SpacingAwareHausdorffDistanceMetric(HausdorffDistanceMetric):
    """``HausdorffDistanceMetric`` that measures in physical units (mm) by default.

    MONAI's ignite handler calls the metric without ``spacing``; this subclass reads it from the prediction's
    ``MetaTensor`` affine when none is passed, so HD95 is reported in millimetres rather than voxels.
    """

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if kwargs.get("spacing") is None and hasattr(y_pred, "pixdim"):
            pixdim = y_pred.pixdim
            if isinstance(pixdim, list):  # a batched MetaTensor keeps one affine per item
                pixdim = pixdim[0]
            kwargs["spacing"] = [float(s) for s in torch.as_tensor(pixdim).reshape(-1)[: y_pred.ndim - 2]]
        return super()._compute_tensor(y_pred, y, **kwargs)


def foreground_union(one_hot: torch.Tensor) -> torch.Tensor:
    """Collapse a one-hot ``(C, ...)`` map into ``(2, ...)``: background and the union of foreground classes.

    This is how the collection reports the "All" column of multi-class segmentation papers.
    """
    foreground = (one_hot[1:].sum(0, keepdim=True) > 0).to(one_hot.dtype)
    return torch.cat([1 - foreground, foreground], dim=0)


def from_engine_foreground_union(keys: Sequence[str] = ("pred", "label")) -> Callable[[Any], tuple[list, list]]:
    """``output_transform`` for MONAI metric handlers that scores the foreground union of ``pred`` and ``label``."""
    extract = from_engine(list(keys))

    def _transform(output: Any) -> tuple[list, list]:
        preds, labels = extract(output)
        return [foreground_union(p) for p in preds], [foreground_union(y) for y in labels]

    return _transform


def from_engine_all_foreground(keys: Sequence[str] = ("pred", "label")) -> Callable[[Any], tuple[list, list]]:
    """``output_transform`` that replaces the prediction by "this structure is everywhere" in every channel.

    A metric handler fed through it measures the trivial baseline a trained model must beat (for Dice:
    ``2|G| / (|G| + N)`` per class), computed on the same cases by the same metric.
    """
    extract = from_engine(list(keys))

    def _transform(output: Any) -> tuple[list, list]:
        preds, labels = extract(output)
        return [torch.ones_like(p) for p in preds], list(labels)

    return _transform
