"""Losses the papers add to MONAI's."""

from .point_supervision import BoundaryLoss, PartialCrossEntropyLoss, PointBoundaryLoss

__all__ = ["BoundaryLoss", "PartialCrossEntropyLoss", "PointBoundaryLoss"]
