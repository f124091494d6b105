"""Loading MIDOG's RGB TIFFs in MONAI's detection layout (a loader of its own: MONAI Label replaces ``LoadImaged``)."""

from __future__ import annotations

from monai.config import KeysCollection

from ..data.midog import load_rgb_tiff
from .file_loading import LoadPathsd

__all__ = ["LoadRGBTiffd"]


class LoadRGBTiffd(LoadPathsd):
    """Replace each key's TIFF path by :func:`common.data.load_rgb_tiff`'s ``(3, X, Y)`` float32 image (0..255).

    Values that are already arrays or tensors (MONAI Label may pass the loaded image) are left as they are.

    Args:
        keys: image keys.
        allow_missing_keys: skip absent keys.
    """

    loader = staticmethod(load_rgb_tiff)

    dictionary_only = "the array form is common.data.load_rgb_tiff"

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys=allow_missing_keys)
