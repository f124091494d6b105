"""Mammogram files: DICOM and 16-bit PNG readers, a breast-region box, and a minimal DICOM writer.

:func:`read_mammogram_dicom` returns the image as displayed: stored values through the Modality LUT (rescale
slope / intercept or a LUT), then the VOI LUT or window when the file has one ("for presentation" images carry
it), then MONOCHROME1 inverted so that high always means bright (dense tissue, calcifications). Cantone et al.
(ICPR 2024) stored such images as 16-bit grey PNGs; :func:`read_mammogram_png` reads that layout.
:func:`breast_region_box` gives the crop that discards the background before resizing.

Every failure is an :class:`ImageFileError` naming the file and the problem.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .errors import ImageFileError

__all__ = [
    "MONOCHROME",
    "breast_region_box",
    "read_mammogram_dicom",
    "read_mammogram_png",
    "write_mammogram_dicom",
]

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")

_GREY_PNG_MODES = ("I;16", "I;16L", "I;16B", "I", "L")
_CODE_STRING = re.compile(r"^[A-Z0-9 _]{1,16}$")


def _output_range(ds: object, voi: str | None) -> tuple[float, float]:
    """Range of the values after the LUT stages, as pydicom computes it (MONOCHROME1 is inverted within it)."""
    if voi == "lut":
        return 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    if ds.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(ds.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 0:
        lo, hi = 0.0, float(2**bits - 1)
    else:
        lo, hi = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
    return lo, hi


def _voi_kind(ds: object) -> str | None:
    """Which VOI stage :func:`apply_voi_lut` applies: the LUT sequence wins over the window, as in pydicom."""
    sequence = ds.get("VOILUTSequence")
    if sequence and None not in (sequence[0].get("LUTDescriptor"), sequence[0].get("LUTData")):
        return "lut"
    if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        return "window"
    return None


def _pair(value: object) -> tuple[float, float] | None:
    try:
        row, col = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return row, col


def read_mammogram_dicom(path: str | Path, apply_window: bool = True) -> tuple[np.ndarray, dict[str, object]]:
    """Read a single-frame grey mammogram DICOM as displayed, high = bright.

    Stages: stored values -> Modality LUT (``apply_modality_lut``: rescale slope / intercept or LUT) -> VOI LUT or
    window (``apply_voi_lut``, when the file has one and ``apply_window``) -> MONOCHROME1 inverted within the output
    range (``lo + hi - value``), so the result reads like MONOCHROME2 whatever the vendor stored.

    Args:
        path: the DICOM file.
        apply_window: apply the file's VOI LUT / window; false keeps the Modality LUT output (e.g. "for
            processing" images, or to choose a window later).

    Returns:
        ``(image, meta)``: float32 ``(H, W)`` and ``{"patient_id", "laterality", "view", "pixel_spacing",
        "photometric_interpretation", "voi", "range"}`` — ``laterality`` from ImageLaterality (else Laterality),
        ``view`` from ViewPosition (else the view code's meaning), ``pixel_spacing`` ``(row, column)`` mm from
        PixelSpacing (else ImagerPixelSpacing, the detector spacing), ``voi`` ``"lut"``, ``"window"`` or None,
        ``range`` the ``(lo, hi)`` the values can take; absent values are None.

    Raises:
        ImageFileError: the file is missing or not DICOM, has no PixelData, a PhotometricInterpretation other than
            MONOCHROME1/MONOCHROME2, several frames, or pixel data or a LUT that cannot be applied.
    """
    import pydicom
    from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut

    path = Path(path)
    if not path.is_file():
        raise ImageFileError(path, "file does not exist")
    try:
        ds = pydicom.dcmread(path)
    except Exception as e:  # InvalidDicomError, truncated files, OS errors: all unreadable
        raise ImageFileError(path, f"cannot be read as DICOM ({type(e).__name__}: {e})") from e
    if "PixelData" not in ds:
        raise ImageFileError(path, f"has no PixelData (SOP class {ds.get('SOPClassUID', 'unknown')}: not an image)")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in MONOCHROME:
        raise ImageFileError(
            path, f"unsupported PhotometricInterpretation '{photometric}' (a mammogram is one of {list(MONOCHROME)})"
        )
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageFileError(path, f"has {frames} frames (tomosynthesis?); a single 2-D mammogram is expected")
    try:
        stored = ds.pixel_array
    except Exception as e:  # a missing decoder or corrupt pixel data
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise ImageFileError(path, f"pixel data cannot be decoded (transfer syntax {syntax}; {e})") from e
    if stored.ndim != 2:
        raise ImageFileError(path, f"pixel data has shape {stored.shape}, expected (rows, columns)")
    voi = _voi_kind(ds) if apply_window else None
    try:
        image = apply_modality_lut(stored, ds)
        if voi == "lut" and image.dtype.kind == "f":
            image = np.rint(image).astype(np.int64)  # LUT entries are indexed by integers (pydicom misreads floats)
        if voi is not None:
            image = apply_voi_lut(image, ds)
        image = np.asarray(image, np.float64)
        lo, hi = _output_range(ds, voi)
    except Exception as e:  # e.g. a window width below 1, a malformed LUT descriptor
        raise ImageFileError(path, f"cannot apply the Modality/VOI LUT ({type(e).__name__}: {e})") from e
    if photometric == "MONOCHROME1":  # low stored value = white: invert so dense tissue is high
        image = lo + hi - image
    view = ds.get("ViewPosition") or None
    if view is None and ds.get("ViewCodeSequence"):
        view = ds.ViewCodeSequence[0].get("CodeMeaning") or None
    spacing = _pair(ds.get("PixelSpacing")) or _pair(ds.get("ImagerPixelSpacing"))
    meta = {
        "patient_id": str(ds.PatientID) if ds.get("PatientID") else None,
        "laterality": str(ds.get("ImageLaterality") or ds.get("Laterality") or "") or None,
        "view": str(view) if view is not None else None,
        "pixel_spacing": spacing,
        "photometric_interpretation": photometric,
        "voi": voi,
        "range": (lo, hi),
    }
    return image.astype(np.float32), meta


def read_mammogram_png(path: str | Path) -> np.ndarray:
    """Read a grey PNG mammogram (the authors' 16-bit layout; 8-bit grey also accepted) as float32 ``(H, W)``.

    Values are kept as stored (0..65535 for 16 bits): the PNGs were written from the displayed DICOM values.

    Args:
        path: the PNG file.

    Returns:
        float32 ``(H, W)``.

    Raises:
        ImageFileError: the file is missing or cannot be decoded, or is not single-channel grey (RGB, palette,
            grey + alpha).
    """
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise ImageFileError(path, "file does not exist")
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode not in _GREY_PNG_MODES:
                raise ImageFileError(path, f"image mode {mode} is not single-channel grey (expected 16-bit grey PNG)")
            img.load()
            array = np.asarray(img)
    except ImageFileError:
        raise
    except Exception as e:  # any decoder failure means the same thing to the user
        raise ImageFileError(path, f"cannot read image ({type(e).__name__}: {e})") from e
    return array.astype(np.float32)


def breast_region_box(
    image: np.ndarray,
    sigma: float = 2.0,
    min_fraction: float = 0.01,
    margin: int = 0,
    source: str | Path | None = None,
) -> tuple[int, int, int, int]:
    """Bounding box of the breast: Otsu threshold of the smoothed image, largest connected component.

    The Gaussian smoothing keeps noise and isolated bright background pixels out of the mask; keeping the largest
    8-connected component drops the burnt-in laterality markers and text, which are separate and much smaller.
    The image must be high = bright (MONOCHROME2 or :func:`read_mammogram_dicom` output): on an uninverted
    MONOCHROME1 image the background would be taken for the breast.

    Args:
        image: ``(H, W)`` mammogram.
        sigma: Gaussian smoothing, pixels.
        min_fraction: smallest share of the image the breast may cover; less means no breast tissue.
        margin: pixels added on each side (clipped to the image).
        source: file the image came from, named in errors (default ``"image"``).

    Returns:
        ``(x1, y1, x2, y2)`` integer pixel-edge coordinates, ends exclusive: the crop is
        ``image[y1:y2, x1:x2]``.

    Raises:
        ValueError: the image is not 2-D.
        ImageFileError: non-finite values, a constant image, or a largest foreground region under ``min_fraction``
            of the image (no breast tissue), naming ``source``.
    """
    from scipy.ndimage import gaussian_filter
    from skimage.filters import threshold_otsu
    from skimage.measure import label

    where = source if source is not None else "image"
    array = np.asarray(image, np.float32)
    if array.ndim != 2:
        raise ValueError(f"{where}: expected a 2-D (H, W) image, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ImageFileError(where, "image has non-finite (NaN or infinite) values")
    if array.max() == array.min():
        raise ImageFileError(where, f"constant image (all {array.min():g}): no breast tissue found")
    smooth = gaussian_filter(array, sigma) if sigma > 0 else array
    if smooth.max() == smooth.min():
        raise ImageFileError(where, "image is constant after smoothing: no breast tissue found")
    components = label(smooth > threshold_otsu(smooth), connectivity=2)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0  # background
    largest = int(sizes.argmax())
    fraction = sizes[largest] / array.size
    if fraction < min_fraction:
        raise ImageFileError(
            where,
            f"no breast tissue found: the largest foreground region covers {100 * fraction:.2f}% of the image "
            f"(< {100 * min_fraction:g}%)",
        )
    rows = np.flatnonzero((components == largest).any(axis=1))
    cols = np.flatnonzero((components == largest).any(axis=0))
    height, width = array.shape
    return (
        max(0, int(cols[0]) - margin),
        max(0, int(rows[0]) - margin),
        min(width, int(cols[-1]) + 1 + margin),
        min(height, int(rows[-1]) + 1 + margin),
    )


def _ds(value: float) -> str:
    """A decimal string (VR DS) of at most 16 characters."""
    return f"{value:.10g}"[:16]


def write_mammogram_dicom(
    path: str | Path,
    array_uint16: np.ndarray,
    patient_id: str,
    laterality: str,
    view: str,
    photometric: str = "MONOCHROME2",
    window: tuple[float, float] | None = None,
    pixel_spacing: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    bits_stored: int = 16,
) -> Path:
    """Write a minimal, standard single-frame mammogram DICOM (Secondary Capture, Modality MG), atomically.

    Secondary Capture is the smallest IOD that can hold a synthetic grey image faithfully (ConversionType ``SYN``);
    the mammography attributes readers look for are added: ImageLaterality and Laterality, ViewPosition,
    BodyPartExamined ``BREAST``, PresentationIntentType ``FOR PRESENTATION``. Explicit VR little endian, with a
    file meta header and preamble. UIDs are derived from the patient, laterality, view and file name, so rewriting
    a sample gives the same file. The file is written to a temporary name in the same folder and moved into place
    with :func:`os.replace`, so readers never see half a file.

    Args:
        path: destination ``.dcm`` file (parent folders are created).
        array_uint16: ``(H, W)`` uint16 stored values.
        patient_id: PatientID (also used as PatientName; synthetic data have no names).
        laterality: ``"L"`` or ``"R"``.
        view: ViewPosition code string, e.g. ``"CC"`` or ``"MLO"``.
        photometric: ``"MONOCHROME2"`` (high = bright) or ``"MONOCHROME1"`` (high = dark).
        window: ``(center, width)`` VOI window (width >= 1), in Modality LUT output units.
        pixel_spacing: ``(row, column)`` spacing in mm (PixelSpacing).
        rescale: ``(slope, intercept)`` of the Modality LUT (RescaleType ``US``, unspecified units).
        bits_stored: significant bits of the stored values (1..16).

    Returns:
        ``path``.

    Raises:
        ValueError: an array that is not 2-D uint16 or exceeds ``bits_stored``, an unknown laterality or
            photometric interpretation, a view that is not a code string, or a window width below 1.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import (
        PYDICOM_IMPLEMENTATION_UID,
        ExplicitVRLittleEndian,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    array = np.asarray(array_uint16)
    if array.ndim != 2 or array.dtype != np.uint16:
        raise ValueError(f"array_uint16 must be a 2-D uint16 array, got {array.dtype} {array.shape}")
    if not 1 <= bits_stored <= 16:
        raise ValueError(f"bits_stored must be in 1..16, got {bits_stored}")
    if array.size and int(array.max()) >= 2**bits_stored:
        raise ValueError(f"array maximum {int(array.max())} does not fit in {bits_stored} bits")
    if laterality not in ("L", "R"):
        raise ValueError(f"laterality must be 'L' or 'R', got {laterality!r}")
    if not _CODE_STRING.match(view):
        raise ValueError(f"view must be a DICOM code string (A-Z, 0-9, space, _; <= 16 chars), got {view!r}")
    if photometric not in MONOCHROME:
        raise ValueError(f"photometric must be one of {MONOCHROME}, got {photometric!r}")
    if window is not None and float(window[1]) < 1:
        raise ValueError(f"window width must be >= 1, got {window[1]}")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    patient_id = str(patient_id)
    study_uid = generate_uid(entropy_srcs=["study", patient_id])
    series_uid = generate_uid(entropy_srcs=["series", patient_id, laterality, view])
    instance_uid = generate_uid(entropy_srcs=["instance", patient_id, laterality, view, path.name])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    # SOP common, patient, general study (type 2 attributes present but empty where unknown)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = instance_uid
    ds.PatientName = patient_id
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    # general series / equipment / SC equipment
    ds.Modality = "MG"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.Laterality = laterality
    ds.BodyPartExamined = "BREAST"
    ds.Manufacturer = ""
    ds.ConversionType = "SYN"
    # general image + the mammography attributes readers use
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ImageLaterality = laterality
    ds.ViewPosition = view
    ds.PresentationIntentType = "FOR PRESENTATION"
    if pixel_spacing is not None:
        ds.PixelSpacing = [_ds(float(pixel_spacing[0])), _ds(float(pixel_spacing[1]))]
    # image pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = (int(n) for n in array.shape)
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    # modality / VOI LUT
    if rescale is not None:
        ds.RescaleSlope = _ds(float(rescale[0]))
        ds.RescaleIntercept = _ds(float(rescale[1]))
        ds.RescaleType = "US"
    if window is not None:
        ds.WindowCenter = _ds(float(window[0]))
        ds.WindowWidth = _ds(float(window[1]))
        ds.VOILUTFunction = "LINEAR"
    ds.PixelData = np.ascontiguousarray(array, dtype="<u2").tobytes()

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-", suffix=".dcm")
    os.close(fd)
    try:
        pydicom.dcmwrite(tmp, ds, write_like_original=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
