"""Loading CT volumes in HU from NIfTI files or DICOM series folders (:func:`common.data.read_ct_volume`)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

from ..data.colon_ct import read_ct_volume

__all__ = ["LoadCTVolume", "LoadCTVolumed"]


class LoadCTVolume(Transform):
    """Path (NIfTI file or DICOM series folder) -> channel-first ``(1, X, Y, Z)`` float32 MetaTensor in HU.

    The meta data carry what MONAI's ``SaveImage`` and ``Invertd`` need: ``affine`` (RAS), ``original_affine``,
    ``spatial_shape`` and ``filename_or_obj``. Masks load the same way (their values are kept).
    """

    def __call__(self, path: str | Path) -> MetaTensor:
        """Read ``path``; errors name the file (:class:`~common.data.ImageFileError`)."""
        array, affine = read_ct_volume(path)
        affine_t = torch.as_tensor(np.asarray(affine, dtype=np.float64))
        meta = {
            "affine": affine_t,
            "original_affine": affine_t.clone(),
            "spatial_shape": np.asarray(array.shape),
            "filename_or_obj": str(path),
            "original_channel_dim": "no_channel",
            "space": "RAS",
        }
        return MetaTensor(torch.as_tensor(array[None], dtype=torch.float32), meta=meta)


class LoadCTVolumed(MapTransform):
    """Dictionary version of :class:`LoadCTVolume`."""

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadCTVolume()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Load every key's path (values that are already arrays are left as they are)."""
        d = dict(data)
        for key in self.key_iterator(d):
            if isinstance(d[key], str | Path):
                d[key] = self.loader(d[key])
        return d
