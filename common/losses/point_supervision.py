"""Losses for learning segmentation from point annotations (Breznik et al., ICPR 2024).

The objective is a partial cross-entropy on the annotated pixels plus ``alpha`` times the boundary loss of
Kervadec et al., whose signed distance maps are built from the point annotations
(:mod:`common.transforms.distance_maps`). Both terms only involve foreground classes: background is never annotated.
The paper uses ``alpha = 1`` with E-Net and ``alpha = 0.7`` with the nnU-Net-style U-Net; ``alpha = 0`` is the
points-only (partial cross-entropy) baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_foreground_classes as _check_classes

__all__ = ["PartialCrossEntropyLoss", "BoundaryLoss", "PointBoundaryLoss"]


def _check_logits(logits: torch.Tensor) -> None:
    if logits.ndim != 4:
        raise ValueError(f"logits must have shape (B, C, H, W), got {tuple(logits.shape)}")


class PartialCrossEntropyLoss(nn.Module):
    """Cross-entropy restricted to annotated pixels, normalised by their number.

    ``loss = sum over annotated pixels of -log softmax(logits)[target] / max(#annotated, 1)``; pixels with target 0
    are not annotated and ignored. A batch without annotated pixels gives 0 (still attached to the graph).
    """

    def forward(self, logits: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits: network output ``(B, C, H, W)``.
            points: annotations ``(B, 1, H, W)`` (or ``(B, H, W)``), integer or float with integer values;
                0 = not annotated, ``k`` = class ``k`` (``1 <= k < C``).

        Returns:
            scalar loss.
        """
        _check_logits(logits)
        if points.ndim == 4:
            if points.shape[1] != 1:
                raise ValueError(f"points must have one channel (B, 1, H, W), got {tuple(points.shape)}")
            points = points[:, 0]
        b, c, h, w = logits.shape
        if tuple(points.shape) != (b, h, w):
            raise ValueError(f"points shape {tuple(points.shape)} does not match logits {(b, 1, h, w)}")
        target = torch.round(points).long() if points.is_floating_point() else points.long()
        target = target.to(logits.device)
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= c):
            raise ValueError(
                f"point labels must lie in 0..{c - 1} for {c} output channels, "
                f"got {int(target.min())}..{int(target.max())}"
            )
        annotated = target > 0
        log_prob = F.log_softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
        total = -(log_prob * annotated).sum()
        return total / annotated.sum().clamp(min=1)


class BoundaryLoss(nn.Module):
    """Boundary loss: ``mean(softmax(logits)[:, classes] * distance)`` over batch, classes and pixels.

    ``distance`` holds one signed map per entry of ``classes`` (negative inside the target region, positive
    outside), so the loss decreases when probability mass moves into the negative region.

    Args:
        classes: foreground class indices (output channels of ``logits``) matching the distance maps, in order.
    """

    def __init__(self, classes: Sequence[int] = (1, 2, 3)) -> None:
        super().__init__()
        self.classes = _check_classes(classes)

    def forward(self, logits: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits: network output ``(B, C, H, W)``.
            distance: signed distance maps ``(B, K, H, W)`` with ``K == len(classes)``.

        Returns:
            scalar loss.
        """
        _check_logits(logits)
        b, c, h, w = logits.shape
        if max(self.classes) >= c:
            raise ValueError(f"classes {self.classes} do not fit logits with {c} channels")
        expected = (b, len(self.classes), h, w)
        if tuple(distance.shape) != expected:
            raise ValueError(
                f"distance must have shape (B, K, H, W) = {expected} (K = len(classes) = {len(self.classes)}), "
                f"got {tuple(distance.shape)}"
            )
        probs = torch.softmax(logits, dim=1)[:, list(self.classes)]
        return (probs * distance.to(device=probs.device, dtype=probs.dtype)).mean()


class PointBoundaryLoss(nn.Module):
    """Partial cross-entropy on point annotations plus ``alpha`` times the boundary loss (paper Eq. 5).

    Args:
        classes: foreground classes of the distance maps (background is never annotated).
        alpha: weight of the boundary loss; 0 gives the points-only baseline (no distance maps needed).
    """

    def __init__(self, classes: Sequence[int] = (1, 2, 3), alpha: float = 1.0) -> None:
        super().__init__()
        alpha = float(alpha)
        if not alpha >= 0.0:
            raise ValueError(f"alpha must be a non-negative number, got {alpha}")
        self.alpha = alpha
        self.partial_ce = PartialCrossEntropyLoss()
        self.boundary = BoundaryLoss(classes)

    def forward(self, logits: torch.Tensor, target: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Compute the loss.

        Args:
            logits: network output ``(B, C, H, W)``.
            target: mapping with ``"points"`` ``(B, 1, H, W)`` and, when ``alpha > 0``, ``"distance"``
                ``(B, K, H, W)``.

        Returns:
            scalar loss.
        """
        if not isinstance(target, Mapping):
            raise TypeError(f"target must be a mapping with 'points' (and 'distance'), got {type(target).__name__}")
        if "points" not in target:
            raise KeyError("PointBoundaryLoss target needs 'points'")
        loss = self.partial_ce(logits, target["points"])
        if self.alpha > 0:
            if "distance" not in target:
                raise KeyError(f"PointBoundaryLoss target needs 'distance' when alpha > 0 (alpha = {self.alpha})")
            loss = loss + self.alpha * self.boundary(logits, target["distance"])
        return loss
