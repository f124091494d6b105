"""Unsupervised validation score of an affine registration: local NCC of the warped source with the target.

The paper's method is unsupervised, so its checkpoint is chosen without landmarks: by the same local NCC the
fine-tuning maximises (:class:`common.losses.AffineNCCLoss` is its negative), on held-out pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from ignite.metrics import Metric

from common.losses.affine_matching import local_ncc
from common.transforms.affine_histology import warp_affine

__all__ = ["warped_local_ncc", "WarpedNCCMetric"]


def warped_local_ncc(image: torch.Tensor, affine: torch.Tensor, window: int = 9) -> float:
    """Local NCC of channel 0 of ``image`` warped by ``affine`` with channel 1.

    Args:
        image: ``(2, H, W)`` canvas pair (source, target).
        affine: source-to-target pixel affine of the canvas, 6 values (``(6,)``, ``(2, 3)`` or ``(3, 3)``).
        window: NCC window (pixels).
    """
    pair = torch.as_tensor(image).float()
    a = torch.as_tensor(affine).float().reshape(-1)[:6]
    if torch.as_tensor(affine).numel() == 9:
        a = torch.as_tensor(affine).float().reshape(3, 3)[:2].reshape(-1)
    with torch.no_grad():
        warped = warp_affine(pair[None, :1], a[None].to(pair.device), tuple(pair.shape[1:]))
        return float(local_ncc(warped, pair[None, 1:2], window))


class WarpedNCCMetric(Metric):
    """Ignite metric: mean :func:`warped_local_ncc` over decollated evaluator outputs (higher is better).

    Each output item needs ``image`` (the ``(2, H, W)`` canvas pair) and ``pred`` (the canvas affine).

    Args:
        window: NCC window (pixels), the fine-tuning loss's.
        output_transform: ignite output transform (default: the engine output as is).
    """

    def __init__(self, window: int = 9, output_transform: Callable = lambda x: x) -> None:
        self.window = window
        super().__init__(output_transform=output_transform)

    def reset(self) -> None:
        """Forget the pairs seen."""
        self._scores: list[float] = []

    def update(self, output: Any) -> None:
        """Score each item of a decollated batch (or one item)."""
        items = output if isinstance(output, list) else [output]
        for item in items:
            self._scores.append(warped_local_ncc(item["image"], item["pred"], self.window))

    def compute(self) -> float:
        """Mean local NCC over the pairs."""
        if not self._scores:
            raise ValueError("WarpedNCCMetric: no pair was scored")
        return float(sum(self._scores) / len(self._scores))
