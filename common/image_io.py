"""Reading whole image files into arrays: the one reader that data checks, metrics and engines share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .data.errors import ImageFileError

__all__ = ["NIFTI_SUFFIXES", "RASTER_SUFFIXES", "image_suffix", "read_image_array"]

NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def image_suffix(path: str | Path) -> str:
    """The lower-case suffix of an image file, ``.nii.gz`` counted as one."""
    path = Path(path)
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
    suffix = image_suffix(path)
    try:
        if suffix in NIFTI_SUFFIXES:
            import nibabel as nib  # loaded on first NIfTI: most bundles read only PNG/TIFF

            return np.asanyarray(nib.load(str(path)).dataobj)
        if suffix in RASTER_SUFFIXES:
            with Image.open(path) as img:
                img.load()
                return np.asarray(img)
    except Exception as exc:  # any decoder failure means the same thing to the user
        raise ImageFileError(path, f"cannot read image ({type(exc).__name__}: {exc})") from exc
    raise ImageFileError(path, f"unsupported file type '{suffix}' (expected one of {NIFTI_SUFFIXES + RASTER_SUFFIXES})")
