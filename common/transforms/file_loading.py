"""The dictionary loader the bundles' own file readers share (MONAI Label replaces every ``LoadImaged``)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform

__all__ = ["LoadPathsd"]


class LoadPathsd(MapTransform):
    """Replace each key's file path with ``loader(path)``; values already loaded (arrays, tensors) pass through.

    Not a ``LoadImaged``: MONAI Label swaps every ``LoadImaged`` of a bundle's preprocessing for its own loader, which
    would skip what a reader of this project does (a DICOM's VOI LUT and MONOCHROME1 inversion, HU rescale, ...).
    A subclass names its reader in ``loader``; the class itself takes one as an argument.

    Args:
        keys: keys holding file paths.
        loader: ``path -> image``; defaults to the class's ``loader``.
        allow_missing_keys: skip absent keys.

    Raises:
        TypeError: no loader given and none set by the class.
    """

    loader: Callable[[str | Path], Any] | None = None

    dictionary_only = "applies any ``loader`` (the array form) to the paths of an item's keys"

    def __init__(
        self, keys: KeysCollection, loader: Callable[[str | Path], Any] | None = None, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if loader is not None:
            self.loader = loader
        if self.loader is None:
            raise TypeError(f"{type(self).__name__} needs a loader (path -> image)")

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """The item with every path of ``keys`` loaded."""
        d = dict(data)
        for key in self.key_iterator(d):
            if isinstance(d[key], str) or hasattr(d[key], "__fspath__"):
                d[key] = self.loader(d[key])
        return d
