"""Square centre crop: the largest centred square of an image (Bolelli et al.: ``min(h, w) x min(h, w)``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.transforms import CenterSpatialCrop, MapTransform, Transform

__all__ = ["SquareCenterCrop", "SquareCenterCropd"]


class SquareCenterCrop(Transform):
    """Crop a channel-first 2D image ``(C, H, W)`` to its centred ``min(H, W)`` square (MONAI's centre crop)."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if img.ndim != 3:
            raise ValueError(f"expected a channel-first 2D image (C, H, W), got shape {tuple(img.shape)}")
        side = int(min(img.shape[1:]))
        return CenterSpatialCrop((side, side))(img)


class SquareCenterCropd(MapTransform):
    """Dictionary version of :class:`SquareCenterCrop`; every key must have the same spatial size (image, mask)."""

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.cropper = SquareCenterCrop()

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:  # noqa: D102
        d = dict(data)
        shapes: dict[Hashable, Sequence[int]] = {}
        for key in self.key_iterator(d):
            shapes[key] = tuple(d[key].shape[1:])
            d[key] = self.cropper(d[key])
        if len(set(shapes.values())) > 1:
            raise ValueError(f"keys have different spatial sizes, cannot crop them alike: {shapes}")
        return d
