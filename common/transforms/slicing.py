"""Selecting one 2D slice of a 3D volume, keeping MONAI metadata consistent."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, SpatialCrop, SqueezeDim, Transform

__all__ = ["SelectSlice", "SelectSliced"]


class SelectSlice(Transform):
    """Take slice ``index`` along spatial ``axis`` of a channel-first volume ``(C, X, Y, Z)`` → ``(C, X, Y)``.

    Built from MONAI's ``SpatialCrop`` and ``SqueezeDim`` so the affine of a ``MetaTensor`` follows the slice.

    Args:
        axis: spatial axis (0, 1 or 2; negative counts from the end) that is sliced.
    """

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def __call__(self, img: torch.Tensor, index: int) -> torch.Tensor:  # noqa: D102
        spatial = img.ndim - 1
        if spatial != 3:
            raise ValueError(
                f"SelectSlice expects a channel-first 3D volume (C, X, Y, Z), got shape {tuple(img.shape)}"
            )
        axis = self.axis % spatial
        depth = img.shape[axis + 1]
        if not 0 <= index < depth:
            raise ValueError(f"slice index {index} is outside 0..{depth - 1} along spatial axis {axis}")
        roi = [slice(None)] * spatial
        roi[axis] = slice(index, index + 1)
        return SqueezeDim(dim=axis + 1)(SpatialCrop(roi_slices=roi)(img))


class SelectSliced(MapTransform):
    """Dictionary version of :class:`SelectSlice`; the slice index is read from ``data[index_key]``."""

    def __init__(
        self, keys: KeysCollection, index_key: str = "slice", axis: int = -1, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.index_key = index_key
        self.selector = SelectSlice(axis)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:  # noqa: D102
        d = dict(data)
        if self.index_key not in d:
            raise KeyError(f"SelectSliced needs the slice index under '{self.index_key}'")
        index = int(d[self.index_key])
        for key in self.key_iterator(d):
            d[key] = self.selector(d[key], index)
        return d
