"""Transforms (array and dictionary versions) the papers add to MONAI's."""

from .distance_maps import (
    ABSENT_MODES,
    DISTANCE_KINDS,
    SignedDistanceMapd,
    euclidean_distance,
    geodesic_distance,
    minimum_barrier_distance,
    point_signed_distance_maps,
    scale_to_255,
    signed_distance_map,
)
from .points import PointAnnotationd, sample_point_annotations
from .slicing import SelectSlice, SelectSliced

__all__ = [
    "ABSENT_MODES",
    "DISTANCE_KINDS",
    "PointAnnotationd",
    "SelectSlice",
    "SelectSliced",
    "SignedDistanceMapd",
    "euclidean_distance",
    "geodesic_distance",
    "minimum_barrier_distance",
    "point_signed_distance_maps",
    "sample_point_annotations",
    "scale_to_255",
    "signed_distance_map",
]
