"""Load an image item only when the dictionary has it (e.g. a lesion mask that some datasets do not ship)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import LoadImaged, MapTransform

__all__ = ["LoadImageIfPresentd"]


class LoadImageIfPresentd(MapTransform):
    """``LoadImaged`` for the keys present in the item; missing keys are left out.

    Deliberately not a ``LoadImaged`` subclass: MONAI Label swaps every ``LoadImaged`` of a bundle's preprocessing for
    its own loader, which requires every key, so an optional mask would break served inference.

    Args:
        keys: keys to load when present.
        kwargs: passed to ``LoadImaged`` (``image_only``, ``reader``, ...).
    """

    dictionary_only = "exists to skip the keys an item lacks; the array form is MONAI's LoadImage"

    def __init__(self, keys: KeysCollection, **kwargs: Any) -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.loader = LoadImaged(keys, allow_missing_keys=True, **kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:  # noqa: D102
        return self.loader(data)
