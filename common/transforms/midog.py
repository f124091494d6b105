"""Loading MIDOG's RGB TIFFs in MONAI's detection layout (a loader of its own: MONAI Label replaces ``LoadImaged``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform

from ..data.midog import load_rgb_tiff

__all__ = ["LoadRGBTiffd"]


class LoadRGBTiffd(MapTransform):
    """Replace each key's TIFF path by :func:`common.data.load_rgb_tiff`'s ``(3, X, Y)`` float32 image (0..255).

    Values that are already arrays or tensors (MONAI Label may pass the loaded image) are left as they are.

    Args:
        keys: image keys.
        allow_missing_keys: skip absent keys.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """The item with its images loaded."""
        d = dict(data)
        for key in self.key_iterator(d):
            if isinstance(d[key], str) or hasattr(d[key], "__fspath__"):
                d[key] = load_rgb_tiff(d[key])
        return d
