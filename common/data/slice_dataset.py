"""A cached dataset of 2D slices cut from a list of 3D volumes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monai.data import CacheDataset

from .errors import ImageFileError

__all__ = ["SliceDataset", "expand_slices"]


def expand_slices(volumes: Sequence[dict[str, Any]], key: str = "image", axis: int = 2) -> list[dict[str, Any]]:
    """One item per slice of each volume (adds ``slice``); reads NIfTI headers only, not voxel data."""
    import nibabel as nib

    slices = []
    for item in volumes:
        try:
            depth = nib.load(str(item[key])).shape[axis]
        except Exception as exc:
            raise ImageFileError(item[key], f"cannot read the image header ({exc})") from exc
        slices += [{**item, "slice": z} for z in range(depth)]
    return slices


class SliceDataset(CacheDataset):
    """``CacheDataset`` over the 2D slices of 3D volumes, for 2D networks trained on volumetric data.

    ``data`` is a list of volume items (as MONAI Label and the readers provide them); each is expanded into one
    item per slice along ``axis`` with the index under ``slice``, which ``common.transforms.SelectSliced`` uses.
    The deterministic part of ``transform`` (loading, slicing, point annotations, distance maps) is computed once
    and cached, as the paper computes its distance maps once before training.

    Args:
        data: volume items with at least ``key``.
        transform: per-slice transform chain, starting with loading the volume.
        key: item key of the volume file whose header gives the number of slices.
        axis: spatial axis of the slices (2 for ACDC's short-axis stacks).
        kwargs: passed on to ``CacheDataset``.
    """

    def __init__(
        self,
        data: Sequence[dict[str, Any]],
        transform: Callable | Sequence[Callable] | None = None,
        key: str = "image",
        axis: int = 2,
        **kwargs: Any,
    ) -> None:
        super().__init__(data=expand_slices(data, key=key, axis=axis), transform=transform, **kwargs)
