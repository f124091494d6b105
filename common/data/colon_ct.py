"""CT colonography volumes: DICOM series (HU rescale) or NIfTI, NIfTI masks, a decathlon-style datalist.

Layout read by :func:`colon_ct_datalist` (the sample of :mod:`common.data.colon_ct_sample` is written in it)::

    <dataset_dir>/dataset.json           {"training": [{"image": ..., "label": ..., "patient": ..., "position": ...}],
                                          "test": [{"image": ..., "patient": ...}]}   ("test" optional, unlabelled)
    <dataset_dir>/imagesTr/<case>.nii.gz  a HU volume, or a folder of one DICOM series (one file per slice)
    <dataset_dir>/labelsTr/<case>.nii.gz  colon mask (1 colon, 0 elsewhere) on the image's grid

Paths in ``dataset.json`` are relative to ``dataset_dir``. ``patient`` groups the prone and supine scans of one
patient so that both always fall in the same split.

:func:`read_dicom_series` stops with an :class:`~common.data.ImageFileError` naming the series for inconsistent
slice spacing, missing slices and missing HU rescale tags; :func:`check_colon_datalist` runs it (or the NIfTI
checks) on every item, compares mask and image shapes, and finds the rectum of every volume before a workflow
writes anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..colon_ct_ops import detect_rectum, em_thresholds, fit_hu_mixture
from .errors import DatasetLayoutError, ImageFileError
from .splits import split_groups
from .validation import check_image, items_to_check, spatial_shape

__all__ = [
    "COLON_CT_LAYOUT",
    "COLON_SPLIT_FRACTIONS",
    "check_colon_datalist",
    "colon_ct_datalist",
    "read_ct_volume",
    "read_dicom_series",
    "write_ct_dicom_series",
]

COLON_CT_LAYOUT = """\
<dataset_dir>/dataset.json              {"training": [{"image": "imagesTr/ctc_000_supine.nii.gz",
                                           "label": "labelsTr/ctc_000_supine.nii.gz",
                                           "patient": "ctc_000", "position": "supine"}, ...]}
<dataset_dir>/imagesTr/<case>.nii.gz    HU volume (or <case>/ with one DICOM file per slice)
<dataset_dir>/labelsTr/<case>.nii.gz    colon mask, 1 colon / 0 elsewhere, on the image's grid
"""
COLON_SPLIT_FRACTIONS: tuple[float, float, float] = (4 / 6, 1 / 6, 1 / 6)
"""Train / validation / test fractions of the patients (the paper: 34 / - / 15 of 49 patients)."""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetLayoutError(path, f"cannot read the datalist ({exc})", COLON_CT_LAYOUT) from exc


def colon_ct_datalist(
    dataset_dir: str | Path,
    split: str = "train",
    seed: int = 0,
    fractions: Sequence[float] = COLON_SPLIT_FRACTIONS,
    require_labels: bool = True,
) -> list[dict[str, Any]]:
    """Items of one split of a decathlon-style colon CT datalist, split by patient.

    Args:
        dataset_dir: the dataset root holding ``dataset.json``.
        split: ``"train"``, ``"val"``, ``"test"`` (patients of the labelled ``training`` list), ``"all"`` (every
            labelled item) or ``"unlabelled"`` (the json's ``test`` list).
        seed: seed of the patient split.
        fractions: train / validation / test fractions of the patients.
        require_labels: labelled splits need a ``label`` in every item.

    Returns:
        Items ``{"image", "label", "patient", "position"}`` with absolute paths, in datalist order.

    Raises:
        DatasetLayoutError: no or malformed ``dataset.json``, an item without image (or label), an unknown split.
    """
    root = Path(dataset_dir)
    path = root / "dataset.json"
    if not path.is_file():
        raise DatasetLayoutError(
            root, "no dataset.json (decathlon-style datalist) in the dataset folder", COLON_CT_LAYOUT
        )
    content = _read_json(path)
    key = "test" if split == "unlabelled" else "training"
    entries = content.get(key, [])
    if not isinstance(entries, list) or (key == "training" and not entries):
        raise DatasetLayoutError(path, f"'{key}' must be a non-empty list of items", COLON_CT_LAYOUT)
    items = []
    for i, entry in enumerate(entries):
        entry = {"image": entry} if isinstance(entry, str) else dict(entry)
        if "image" not in entry or (key == "training" and require_labels and "label" not in entry):
            raise DatasetLayoutError(path, f"{key}[{i}] lacks 'image'{' or label' if key == 'training' else ''}")
        item = {**entry, "image": str(root / entry["image"])}
        if "label" in entry:
            item["label"] = str(root / entry["label"])
        item.setdefault("patient", Path(entry["image"]).name.split(".")[0])
        item["patient"] = str(item["patient"])
        items.append(item)
    if split in ("all", "unlabelled"):
        return items
    if split not in ("train", "val", "test"):
        raise DatasetLayoutError(root, f"unknown split {split!r} (expected train, val, test, all or unlabelled)")
    groups = split_groups([i["patient"] for i in items], fractions, seed=seed)[split]
    return [i for i in items if i["patient"] in groups]


def read_dicom_series(folder: str | Path, tolerance: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Read one CT series (one file per slice) into a HU volume and its RAS affine.

    Slices are ordered along the slice normal; z = 0 is the inferior end.

    Args:
        folder: the series folder.
        tolerance: allowed relative deviation of a slice gap from the median gap.

    Returns:
        ``(hu, affine)``: float32 volume ``(x, y, z)`` and a 4x4 voxel-to-RAS matrix.

    Raises:
        ImageFileError: no DICOM file, unreadable files, a slice without RescaleSlope / RescaleIntercept, slices of
            different sizes or orientations, missing slices, or inconsistent slice spacing.
    """
    import pydicom

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    if not files:
        raise ImageFileError(folder, "no DICOM file in the series folder")
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(str(f))
            pixels = ds.pixel_array
        except Exception as exc:
            raise ImageFileError(f, f"cannot read image ({type(exc).__name__}: {exc})") from exc
        if "RescaleSlope" not in ds or "RescaleIntercept" not in ds:
            raise ImageFileError(
                f, "has no HU rescale tags (RescaleSlope / RescaleIntercept): the values cannot be mapped to HU"
            )
        if "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
            raise ImageFileError(f, "has no ImagePositionPatient / ImageOrientationPatient: slices cannot be ordered")
        hu = pixels.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        slices.append((ds, hu, f))
    orientation = np.asarray(slices[0][0].ImageOrientationPatient, dtype=np.float64)
    row, col = orientation[:3], orientation[3:]
    normal = np.cross(row, col)
    for ds, hu, f in slices:
        if not np.allclose(np.asarray(ds.ImageOrientationPatient, dtype=np.float64), orientation, atol=1e-4):
            raise ImageFileError(f, "has another ImageOrientationPatient than the rest of the series")
        if hu.shape != slices[0][1].shape:
            raise ImageFileError(f, f"slice size {hu.shape} differs from the series' {slices[0][1].shape}")
    slices.sort(key=lambda s: float(np.dot(np.asarray(s[0].ImagePositionPatient, dtype=np.float64), normal)))
    positions = np.array([np.dot(np.asarray(s[0].ImagePositionPatient, dtype=np.float64), normal) for s in slices])
    if len(slices) > 1:
        gaps = np.diff(positions)
        if np.any(gaps <= 1e-6):
            raise ImageFileError(folder, "two slices share one position (a duplicated slice)")
        median = float(np.median(gaps))
        bad = np.flatnonzero(np.abs(gaps - median) > tolerance * median)
        if len(bad):
            i = int(bad[0])
            ratio = gaps[i] / median
            names = f"{slices[i][2].name} -> {slices[i + 1][2].name}"
            if abs(ratio - round(ratio)) < tolerance * 10 and round(ratio) >= 2:
                raise ImageFileError(
                    folder,
                    f"missing slices: a gap of {gaps[i]:.3f} mm ({round(ratio) - 1} slice(s)) at {names}, "
                    f"the series' spacing is {median:.3f} mm",
                )
            raise ImageFileError(
                folder,
                f"inconsistent slice spacing: {gaps[i]:.3f} mm at {names}, the median spacing is {median:.3f} mm",
            )
        spacing_z = median
    else:
        spacing_z = float(getattr(slices[0][0], "SliceThickness", 1.0) or 1.0)
    # pixel_array is (rows, columns): columns run along `row`, rows along `col`; volume axes (x=column, y=row, z)
    volume = np.stack([s[1].T for s in slices], -1)
    dr, dc = (float(v) for v in slices[0][0].PixelSpacing)  # row spacing, column spacing
    lps = np.eye(4)
    lps[:3, 0] = row * dc
    lps[:3, 1] = col * dr
    lps[:3, 2] = normal * spacing_z
    lps[:3, 3] = np.asarray(slices[0][0].ImagePositionPatient, dtype=np.float64)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # LPS -> RAS
    return volume.astype(np.float32), affine


def write_ct_dicom_series(
    folder: str | Path,
    hu: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    positions: Sequence[float] | None = None,
    rescale: bool = True,
) -> Path:
    """Write a HU volume as a CT series, one file per slice (int16, slope 1, intercept -1024, axial, LPS).

    For tests and for converting the sample: :func:`read_dicom_series` reads it back to the same voxels.

    Args:
        folder: destination folder (created).
        hu: ``(x, y, z)`` volume in HU.
        spacing: voxel size (x, y, z) in mm.
        positions: slice positions along z in mm (default ``i * spacing[2]``); gaps make a broken series.
        rescale: write RescaleSlope / RescaleIntercept (False makes a series without HU rescale tags).

    Returns:
        ``folder`` as a :class:`~pathlib.Path`.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    positions = list(positions) if positions is not None else [i * spacing[2] for i in range(hu.shape[2])]
    series = generate_uid()
    for i, z in enumerate(positions):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"slice{i:03d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = (
            CTImageStorage,
            meta.MediaStorageSOPInstanceUID,
            series,
        )
        ds.Modality, ds.InstanceNumber = "CT", i + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, float(z)]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # between rows (along y), between columns (x)
        ds.SliceThickness = float(spacing[2])
        pixels = np.clip(np.round(hu[:, :, min(i, hu.shape[2] - 1)].T + 1024), -32768, 32767).astype(np.int16)
        ds.Rows, ds.Columns = pixels.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        if rescale:
            ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = pixels.tobytes()
        ds.save_as(str(path), write_like_original=False)
    return folder


def read_ct_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A CT volume in HU and its affine, from a NIfTI file or a DICOM series folder.

    Args:
        path: ``.nii`` / ``.nii.gz`` file or DICOM series folder.

    Returns:
        ``(hu, affine)`` as :func:`read_dicom_series`.

    Raises:
        ImageFileError: unreadable, not 3D, or non-finite values.
    """
    path = Path(path)
    if path.is_dir():
        return read_dicom_series(path)
    import nibabel as nib

    array = check_image(path, channels=1, spatial_ndim=3).astype(np.float32)
    return array, nib.load(str(path)).affine


def check_colon_datalist(
    datalist: Sequence[Mapping[str, Any]],
    label_key: str | None = "label",
    find_rectum: bool = True,
    progress: bool = True,
) -> Sequence[Mapping[str, Any]]:
    """Check every volume (and mask) of a colon CT datalist before a workflow starts; return it unchanged.

    Args:
        datalist: items with ``image`` (NIfTI file or DICOM folder) and optionally ``label_key`` (NIfTI).
        label_key: the mask key (None: images only).
        find_rectum: run the EM thresholds and the rectum detection of the MRF labelling on every volume.
        progress: progress bar for long datalists.

    Returns:
        ``datalist``.

    Raises:
        DatasetError: an empty datalist.
        ImageFileError: naming the first bad file (unreadable, wrong channels or dimensions, NaN, DICOM series
            problems, mask of another shape).
        RectumNotFoundError: a volume with no rectum in its lowest slices.
    """
    for item in items_to_check(datalist, "volumes", "checking CT volumes", progress):
        image_path = item.get("image")
        if not isinstance(image_path, str | Path):
            continue
        hu, _ = read_ct_volume(image_path)
        label_path = item.get(label_key) if label_key else None
        if isinstance(label_path, str | Path):
            label = check_image(label_path, channels=1, spatial_ndim=3, allowed_values=(0, 1))
            label_shape = spatial_shape(label, Path(label_path))
            if label_shape != hu.shape:
                raise ImageFileError(
                    label_path, f"mask shape {label_shape} differs from its volume's shape {hu.shape} ({image_path})"
                )
        if find_rectum:
            t1, _ = em_thresholds(fit_hu_mixture(hu))
            detect_rectum(hu, t1, source=image_path)
    return datalist
