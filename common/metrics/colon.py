"""Overlap scores of colon masks and the output transform that scores the MRF initial mask."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from monai.handlers import from_engine

__all__ = ["dice_jaccard", "from_engine_channel"]


def dice_jaccard(pred: np.ndarray | torch.Tensor, label: np.ndarray | torch.Tensor) -> tuple[float, float]:
    """Dice and Jaccard of two binary masks, both from the same confusion counts.

    Args:
        pred: predicted mask (values > 0.5 are foreground).
        label: reference mask.

    Returns:
        ``(dice, jaccard)``; both 1.0 when both masks are empty.

    Raises:
        ValueError: masks of different shapes.
    """
    p = np.asarray(pred.detach().cpu() if isinstance(pred, torch.Tensor) else pred) > 0.5
    g = np.asarray(label.detach().cpu() if isinstance(label, torch.Tensor) else label) > 0.5
    if p.shape != g.shape:
        raise ValueError(f"prediction shape {p.shape} differs from the label's {g.shape}")
    tp = float((p & g).sum())
    fp, fn = float((p & ~g).sum()), float((~p & g).sum())
    if tp + fp + fn == 0:
        return 1.0, 1.0
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)


def from_engine_channel(
    keys: Sequence[str] = ("image", "label"), channel: int = 1
) -> Callable[[Any], tuple[list, list]]:
    """``output_transform`` scoring one channel of the first key against the second (thresholded at 0.5).

    With ``("image", "label")`` and channel 1 it scores the MRF initial mask that
    :class:`common.transforms.ColonInitialLabelling` put beside the CT, by the same metric as the network.
    """
    extract = from_engine(list(keys))

    def _transform(output: Any) -> tuple[list, list]:
        first, second = extract(output)
        return [(f[channel : channel + 1] > 0.5).float() for f in first], list(second)

    return _transform
