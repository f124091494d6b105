"""Up-front checks of dataset files, run before a workflow writes anything.

Workflows call :func:`check_datalist` as their first ``run`` step, so a truncated file, a mask of the wrong size,
an image with the wrong number of channels or a NaN-filled volume stops the run with one message that names the
file and the problem, before any checkpoint, log or prediction is written.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..image_io import NIFTI_SUFFIXES, RASTER_SUFFIXES, image_suffix, read_image_array
from .errors import DatasetError, ImageFileError

__all__ = ["check_image", "check_datalist", "check_image_datalist", "spatial_shape"]


def _channels(array: np.ndarray, path: Path) -> int:
    """Channel count of a raster image (2D arrays are single-channel); 1 for volumes."""
    if image_suffix(path) in NIFTI_SUFFIXES:
        return 1 if array.ndim <= 3 else int(array.shape[-1])
    return 1 if array.ndim == 2 else int(array.shape[-1])


def spatial_shape(array: np.ndarray, path: str | Path) -> tuple[int, ...]:
    """The spatial shape of an array read from ``path``: ``(H, W)`` for a raster image with channels, else its shape."""
    path = Path(path)
    if image_suffix(path) in RASTER_SUFFIXES and array.ndim == 3:
        return tuple(array.shape[:2])
    return tuple(array.shape)


def check_image(
    path: str | Path,
    channels: int | Sequence[int] | None = None,
    spatial_ndim: int | None = None,
    finite: bool = True,
    allowed_values: Iterable[int] | None = None,
) -> np.ndarray:
    """Read ``path`` and check it; return the array.

    Args:
        path: image or label file.
        channels: expected channel count (or counts) of a raster image; ``None`` skips the check.
        spatial_ndim: expected number of spatial dimensions (2 for slices, 3 for volumes).
        finite: reject NaN or infinite values.
        allowed_values: for label maps, the only values that may occur.

    Raises:
        ImageFileError: naming the file and what is wrong with it.
    """
    path = Path(path)
    array = read_image_array(path)
    if array.size == 0:
        raise ImageFileError(path, "image is empty")
    if channels is not None:
        allowed = (channels,) if isinstance(channels, int) else tuple(channels)
        found = _channels(array, path)
        if found not in allowed:
            raise ImageFileError(path, f"has {found} channel(s), expected {' or '.join(map(str, allowed))}")
    if spatial_ndim is not None:
        shape = spatial_shape(array, path)
        if len(shape) != spatial_ndim:
            raise ImageFileError(path, f"has spatial shape {shape}, expected a {spatial_ndim}D image")
    if finite and np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ImageFileError(path, f"contains {bad} NaN or infinite value(s) out of {array.size}")
    if allowed_values is not None:
        values = set(np.unique(array).tolist())
        extra = values - set(allowed_values)
        if extra:
            raise ImageFileError(
                path, f"label values {sorted(extra)} are not allowed (expected {sorted(allowed_values)})"
            )
    return array


def check_datalist(
    datalist: Sequence[Mapping[str, object]],
    image_key: str = "image",
    label_key: str | None = "label",
    image_channels: int | Sequence[int] | None = None,
    label_channels: int | Sequence[int] | None = 1,
    spatial_ndim: int | None = None,
    label_values: Iterable[int] | None = None,
    progress: bool = True,
) -> Sequence[Mapping[str, object]]:
    """Check every file of a datalist before a workflow starts; return the datalist unchanged.

    Each image is fully decoded once. Labels (when ``label_key`` is in an item) must match their image's spatial
    shape. Items whose value is not a file path (for example arrays passed in by MONAI Label) are skipped.

    Raises:
        DatasetError: for an empty datalist.
        ImageFileError: for the first bad file, naming it and the problem.
    """
    for item in items_to_check(datalist, "cases", "checking dataset files", progress):
        image_path = item.get(image_key)
        if not isinstance(image_path, (str, Path)):
            continue
        image = check_image(image_path, channels=image_channels, spatial_ndim=spatial_ndim)
        label_path = item.get(label_key) if label_key else None
        if not isinstance(label_path, (str, Path)):
            continue
        label = check_image(label_path, channels=label_channels, spatial_ndim=spatial_ndim, allowed_values=label_values)
        image_shape = spatial_shape(image, Path(image_path))
        label_shape = spatial_shape(label, Path(label_path))
        if image_shape != label_shape:
            raise ImageFileError(
                label_path, f"label shape {label_shape} differs from its image's shape {image_shape} ({image_path})"
            )
    return datalist


def items_to_check(datalist: Sequence, what: str, desc: str, progress: bool = True) -> Iterable:
    """The items of a datalist to check one by one, behind a progress bar when there are many.

    Args:
        datalist: the items.
        what: what the dataset holds, for the error ("cases", "regions", ...).
        desc: the progress bar's label.
        progress: show a progress bar for more than 20 items.

    Raises:
        DatasetError: for an empty datalist.
    """
    if len(datalist) == 0:
        raise DatasetError(f"the datalist is empty: the dataset folder holds no usable {what}")
    if progress and len(datalist) > 20 and sys.stdout.isatty():  # a bar in a log file is noise
        from tqdm import tqdm  # only for a long check on a terminal

        return tqdm(datalist, desc=desc, file=sys.stdout, leave=False)
    return datalist


def check_image_datalist(
    datalist: Sequence[Mapping[str, object]],
    image_channels: int | Sequence[int] = 1,
    min_size: int = 32,
    image_key: str = "image",
    progress: bool = True,
    image_size: int | None = None,
    channel_names: Sequence[str] | None = None,
    what: str = "images",
    desc: str = "checking image files",
) -> Sequence[Mapping[str, object]]:
    """Decode and check every 2D image of a datalist before anything is written; return it unchanged.

    Each image must be readable, 2D with ``image_channels`` channels, at least ``min_size`` pixels on each side
    (``image_size`` pixels square when given), finite and not constant (a constant image carries no information and
    cannot be intensity-normalised). With ``channel_names`` no channel may be constant (a blank channel of a
    multi-modal image is a missing or failed acquisition). Items whose image is not a path (arrays handed over by
    MONAI Label) are skipped.

    Args:
        datalist: the items.
        image_channels: allowed channel count(s).
        min_size: smallest allowed side in pixels.
        image_key: the key holding the image path.
        progress: show a progress bar for a long check on a terminal.
        image_size: the exact square side every image must have (``None``: any size).
        channel_names: name of each channel (e.g. modalities), to check each one on its own.
        what: what the dataset holds, for the error of an empty datalist.
        desc: the progress bar's label.

    Raises:
        DatasetError: empty datalist.
        ImageFileError: the first bad file, named with its problem.
    """
    for item in items_to_check(datalist, what, desc, progress):
        path = item.get(image_key)
        if not isinstance(path, (str, Path)):
            continue
        array = check_image(path, channels=image_channels, spatial_ndim=2)
        height, width = array.shape[:2]
        if min(height, width) < min_size:
            raise ImageFileError(path, f"image size {width}x{height} is below the minimum {min_size}x{min_size}")
        if image_size is not None and (height, width) != (image_size, image_size):
            raise ImageFileError(
                path, f"image size {width}x{height} differs from the expected {image_size}x{image_size}"
            )
        if channel_names is None and np.ptp(array.reshape(-1)) == 0:
            raise ImageFileError(path, f"image is constant (every pixel {array.reshape(-1)[0]}): nothing to classify")
        for c, name in enumerate(channel_names or ()):
            channel = array[..., c]
            if np.ptp(channel) == 0:
                raise ImageFileError(path, f"{name} channel is constant (every pixel {channel.flat[0]}): "
                                     "a blank or failed acquisition")  # fmt: skip
    return datalist
