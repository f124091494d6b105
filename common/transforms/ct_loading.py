"""Loading CT volumes in HU from NIfTI files or DICOM series folders (:func:`common.data.read_ct_volume`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import Transform

from ..data.colon_ct import read_ct_volume
from .file_loading import LoadPathsd

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


class LoadCTVolumed(LoadPathsd):
    """Dictionary version of :class:`LoadCTVolume` (values that are already arrays are left as they are).

    Args:
        keys: keys holding NIfTI paths or DICOM series folders.
        allow_missing_keys: skip absent keys.
    """

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, loader=LoadCTVolume(), allow_missing_keys=allow_missing_keys)
