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

from .errors import DatasetError, ImageFileError

__all__ = ["read_image_array", "check_image", "check_datalist", "check_image_datalist", "spatial_shape"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_image_array(path: str | Path) -> np.ndarray:
    """Read a whole image file into a numpy array (channels last for raster images).

    NIfTI files are read with nibabel, raster images with Pillow; both are fully decoded, so truncated files fail here.

    Raises:
        ImageFileError: the file is missing, has an unsupported suffix or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(path, "file does not exist")
    suffix = _suffix(path)
    try:
        if suffix in NIFTI_SUFFIXES:
            import nibabel as nib

            return np.asanyarray(nib.load(str(path)).dataobj)
        if suffix in RASTER_SUFFIXES:
            from PIL import Image

            with Image.open(path) as img:
                img.load()
                return np.asarray(img)
    except Exception as exc:  # any decoder failure means the same thing to the user
        raise ImageFileError(path, f"cannot read image ({type(exc).__name__}: {exc})") from exc
    raise ImageFileError(path, f"unsupported file type '{suffix}' (expected one of {NIFTI_SUFFIXES + RASTER_SUFFIXES})")


def _channels(array: np.ndarray, path: Path) -> int:
    """Channel count of a raster image (2D arrays are single-channel); 1 for volumes."""
    if _suffix(path) in NIFTI_SUFFIXES:
        return 1 if array.ndim <= 3 else int(array.shape[-1])
    return 1 if array.ndim == 2 else int(array.shape[-1])


def spatial_shape(array: np.ndarray, path: str | Path) -> tuple[int, ...]:
    """The spatial shape of an array read from ``path``: ``(H, W)`` for a raster image with channels, else its shape."""
    path = Path(path)
    if _suffix(path) in RASTER_SUFFIXES and array.ndim == 3:
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
        from tqdm import tqdm

        return tqdm(datalist, desc=desc, file=sys.stdout, leave=False)
    return datalist


def check_image_datalist(
    datalist: Sequence[Mapping[str, object]],
    image_channels: int | Sequence[int] = 1,
    min_size: int = 32,
    image_key: str = "image",
    progress: bool = True,
) -> Sequence[Mapping[str, object]]:
    """Decode and check every image of a classification datalist before anything is written; return it unchanged.

    Each image must be readable, 2D with ``image_channels`` channels, at least ``min_size`` pixels on each side,
    finite and not constant (a constant image carries no information and cannot be intensity-normalised).
    Items whose image is not a path (arrays handed over by MONAI Label) are skipped.

    Raises:
        DatasetError: empty datalist.
        ImageFileError: the first bad file, named with its problem.
    """
    for item in items_to_check(datalist, "images", "checking image files", progress):
        path = item.get(image_key)
        if not isinstance(path, (str, Path)):
            continue
        array = check_image(path, channels=image_channels, spatial_ndim=2)
        height, width = array.shape[:2]
        if min(height, width) < min_size:
            raise ImageFileError(path, f"image size {width}x{height} is below the minimum {min_size}x{min_size}")
        if np.ptp(array.reshape(-1)) == 0:
            raise ImageFileError(path, f"image is constant (every pixel {array.reshape(-1)[0]}): nothing to classify")
    return datalist
