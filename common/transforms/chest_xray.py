"""Loading chest radiographs as MONAI detection images (``(1, W, H)``, x along the first spatial axis)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor

from ..data.chest_xray import read_chest_xray
from ..data.errors import ImageFileError
from ..data.mammography import read_mammogram_dicom
from .file_loading import LoadPathsd

__all__ = ["LoadChestXrayd", "load_chest_xray"]


def load_chest_xray(path: str | Path) -> MetaTensor:
    """Read a chest radiograph (DICOM as displayed, or a grey PNG / JPEG) as a ``(1, W, H)`` float32 MetaTensor.

    Args:
        path: the file.

    Returns:
        The image (high = bright), meta ``filename_or_obj``, ``original_shape`` ``(H, W)`` and, for DICOM, the
        DICOM reader's fields (``patient_id``...).

    Raises:
        ImageFileError: an unreadable file (see :func:`common.data.read_chest_xray`).
    """
    path = Path(path)
    meta: dict[str, Any] = {}
    if path.suffix.lower() in (".dcm", ".dicom", ""):
        try:
            array, dicom_meta = read_mammogram_dicom(path)
        except ImageFileError as e:
            problem = e.problem if e.problem.startswith("cannot read image") else f"cannot read image: {e.problem}"
            raise ImageFileError(path, problem) from e
        meta.update({k: v for k, v in dicom_meta.items() if v is not None and k != "range"})
        array = np.asarray(array, np.float32)
        if not np.isfinite(array).all():
            raise ImageFileError(path, "the image holds NaN or infinite values")
    else:
        array = read_chest_xray(path)
    meta.update(filename_or_obj=str(path), original_shape=list(array.shape))
    return MetaTensor(torch.from_numpy(np.ascontiguousarray(array.T))[None], meta=meta)


class LoadChestXrayd(LoadPathsd):
    """Replace each key's file path with :func:`load_chest_xray`'s ``(1, W, H)`` MetaTensor (see :class:`LoadPathsd`).

    Args:
        keys: keys holding file paths.
        allow_missing_keys: skip absent keys.
    """

    loader = staticmethod(load_chest_xray)

    dictionary_only = "the array form is load_chest_xray"

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys=allow_missing_keys)
