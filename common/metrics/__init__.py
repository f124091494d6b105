"""Metrics and metric output transforms used by the bundles' evaluators."""

from .segmentation import (
    SpacingAwareHausdorffDistanceMetric,
    foreground_union,
    from_engine_all_foreground,
    from_engine_foreground_union,
)

__all__ = [
    "SpacingAwareHausdorffDistanceMetric",
    "foreground_union",
    "from_engine_all_foreground",
    "from_engine_foreground_union",
]
