"""Chest radiograph datasets in their own layouts: RSNA Pneumonia Detection (boxes) and CheXpert (image labels).

RSNA (:data:`RSNA_LAYOUT`): one DICOM per patient and a CSV with one row per box (``Target 1``) or one row without a
box (``Target 0``). :func:`read_rsna_labels` turns it into the box datalist of :mod:`common.data.boxes`
(``image``, ``box`` xyxy pixels, ``label`` zeros, ``patient``) plus ``cawe_label`` (the image-level label the
intra-dataset CAWE classifier learns: any opacity). :func:`rsna_datalist` splits at the patient level.

CheXpert (:data:`CHEXPERT_LAYOUT`): :func:`read_chexpert_csv` gives ``image`` and ``cawe_label`` (14 floats) for the
inter-dataset CAWE classifier. Uncertain labels (``-1``) follow a stated policy (``ones``: U-Ones, the default;
``zeros``: U-Zeros), blank means not mentioned (0). Only frontal views are kept (the detector sees frontal films).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .boxes import check_boxes, read_image_size
from .errors import DatasetLayoutError, ImageFileError
from .mammography import read_mammogram_dicom
from .splits import split_groups
from .validation import items_to_check

__all__ = [
    "CHEXPERT_LAYOUT",
    "CHEXPERT_OBSERVATIONS",
    "RSNA_LAYOUT",
    "RSNA_SPLIT_FRACTIONS",
    "check_chest_xray_datalist",
    "chexpert_datalist",
    "read_chest_xray",
    "read_chexpert_csv",
    "read_rsna_labels",
    "rsna_datalist",
]

RSNA_LAYOUT = """\
<dataset_dir>/
├── stage_2_train_labels.csv     patientId,x,y,width,height,Target   (one row per box; Target 0 rows have no box)
└── stage_2_train_images/
    ├── <patientId>.dcm          one frontal chest radiograph per patient
    └── ...
"""

CHEXPERT_LAYOUT = """\
<chexpert_dir>/
└── CheXpert-v1.0-small/
    ├── train.csv                Path,Sex,Age,Frontal/Lateral,AP/PA,<14 observations>  (1 / 0 / -1 / blank)
    └── train/patient00001/study1/view1_frontal.jpg   (Path is relative to <chexpert_dir>)
"""

CHEXPERT_OBSERVATIONS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
"""CheXpert's 14 observation columns, in the CSV's order."""

RSNA_SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
"""Patient-level train / validation / test fractions: the paper's 8:2 train:test, with a quarter of the training
patients held out for model selection."""

_RSNA_COLUMNS = ("patientId", "x", "y", "width", "height", "Target")
_CHEXPERT_META = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")


def _read_csv(path: Path, required: Sequence[str], layout: str) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetLayoutError(path, "annotation file does not exist", layout)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetLayoutError(path, f"cannot be read as CSV ({e})", layout) from e
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetLayoutError(path, f"lacks the column(s) {missing} (header: {header})", layout)
    return rows


def read_rsna_labels(csv_path: str | Path, image_dir: str | Path) -> list[dict[str, object]]:
    """Box datalist of the RSNA Pneumonia Detection CSV, one item per patient, in the CSV's order.

    Args:
        csv_path: ``stage_2_train_labels.csv``.
        image_dir: ``stage_2_train_images`` (``<patientId>.dcm``).

    Returns:
        Items ``{"image", "box" (N, 4) float32 xyxy, "label" (N,) int64 zeros, "patient", "cawe_label" (1,)}``.

    Raises:
        DatasetLayoutError: a missing file or column, a patientId without its image, a Target other than 0/1, a
            Target 1 row without a box or a Target 0 row with one, a non-numeric field, or a box that leaves its
            image (each naming the CSV and the line).
        ImageFileError: an image whose header cannot be read.
    """
    path, image_dir = Path(csv_path), Path(image_dir)
    rows = _read_csv(path, _RSNA_COLUMNS, RSNA_LAYOUT)
    patients: dict[str, dict[str, object]] = {}
    for line, row in enumerate(rows, start=2):
        pid = (row["patientId"] or "").strip()
        where = f"line {line} ({pid or 'no patientId'})"
        if not pid:
            raise DatasetLayoutError(path, f"{where}: empty patientId", RSNA_LAYOUT)
        target = (row["Target"] or "").strip()
        if target not in ("0", "1"):
            raise DatasetLayoutError(path, f"{where}: Target must be 0 or 1, got '{target}'", RSNA_LAYOUT)
        if pid not in patients:
            image = image_dir / f"{pid}.dcm"
            if not image.is_file():
                raise DatasetLayoutError(path, f"{where}: patientId {pid} has no image {image}", RSNA_LAYOUT)
            patients[pid] = {"image": image, "boxes": [], "entries": [], "target": 0}
        record = patients[pid]
        fields = [(row[c] or "").strip() for c in ("x", "y", "width", "height")]
        if target == "0":
            if any(fields):
                raise DatasetLayoutError(path, f"{where}: a Target 0 row must not have a box, got {fields}")
            continue
        if not all(fields):
            raise DatasetLayoutError(path, f"{where}: a Target 1 row needs x, y, width and height, got {fields}")
        try:
            x, y, w, h = (float(v) for v in fields)
        except ValueError as e:
            raise DatasetLayoutError(path, f"{where}: box fields are not numbers ({e})") from e
        record["boxes"].append([x, y, x + w, y + h])
        record["entries"].append(where)
        record["target"] = 1
    items = []
    for pid, record in patients.items():
        shape = read_image_size(record["image"]) if record["boxes"] else None
        boxes = check_boxes(np.asarray(record["boxes"]).reshape(-1, 4), shape, path, record["entries"])
        items.append(
            {
                "image": str(record["image"]),
                "box": boxes,
                "label": np.zeros(len(boxes), np.int64),
                "patient": pid,
                "cawe_label": np.asarray([record["target"]], np.float32),
            }
        )
    return items


def rsna_datalist(
    dataset_dir: str | Path, split: str, seed: int = 0, fractions: Sequence[float] = RSNA_SPLIT_FRACTIONS
) -> list[dict[str, object]]:
    """The items of one patient-level split (``train``, ``val``, ``test`` or ``all``) of an RSNA-layout folder.

    Raises:
        DatasetLayoutError: a missing folder, see :func:`read_rsna_labels`, or an unknown split.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetLayoutError(root, "dataset folder does not exist", RSNA_LAYOUT)
    items = read_rsna_labels(root / "stage_2_train_labels.csv", root / "stage_2_train_images")
    if split == "all":
        return items
    if split not in ("train", "val", "test"):
        raise DatasetLayoutError(root, f"unknown split '{split}'; choose train, val, test or all")
    keep = set(split_groups([str(i["patient"]) for i in items], fractions, seed)[split])
    return [i for i in items if i["patient"] in keep]


def read_chexpert_csv(
    csv_path: str | Path, image_root: str | Path | None = None, uncertain: str = "ones", frontal_only: bool = True
) -> list[dict[str, object]]:
    """Image-label datalist of a CheXpert CSV (:data:`CHEXPERT_LAYOUT`).

    Args:
        csv_path: ``train.csv`` (or ``valid.csv``).
        image_root: folder ``Path`` is relative to (default: the CSV's grandparent, CheXpert's own layout).
        uncertain: ``ones`` (U-Ones: -1 -> 1) or ``zeros`` (U-Zeros: -1 -> 0).
        frontal_only: keep the rows whose ``Frontal/Lateral`` is ``Frontal``.

    Returns:
        Items ``{"image", "cawe_label" (14,) float32, "patient"}``.

    Raises:
        DatasetLayoutError: a missing file, missing columns, a label other than 1/0/-1/blank, a missing image, or no
            row left.
        ValueError: an unknown ``uncertain`` policy.
    """
    if uncertain not in ("ones", "zeros"):
        raise ValueError(f"uncertain must be 'ones' (U-Ones) or 'zeros' (U-Zeros), got '{uncertain}'")
    path = Path(csv_path)
    root = Path(image_root) if image_root is not None else path.parent.parent
    rows = _read_csv(path, (*_CHEXPERT_META, *CHEXPERT_OBSERVATIONS), CHEXPERT_LAYOUT)
    values = {"": 0.0, "1": 1.0, "1.0": 1.0, "0": 0.0, "0.0": 0.0, "-1": -1.0, "-1.0": -1.0}
    items = []
    for line, row in enumerate(rows, start=2):
        if frontal_only and (row["Frontal/Lateral"] or "").strip() != "Frontal":
            continue
        image = root / (row["Path"] or "").strip()
        if not image.is_file():
            raise DatasetLayoutError(path, f"line {line}: image {image} does not exist", CHEXPERT_LAYOUT)
        label = []
        for name in CHEXPERT_OBSERVATIONS:
            text = (row[name] or "").strip()
            if text not in values:
                raise DatasetLayoutError(path, f"line {line}: {name} must be 1, 0, -1 or blank, got '{text}'")
            v = values[text]
            label.append((1.0 if uncertain == "ones" else 0.0) if v < 0 else v)
        patient = Path(row["Path"]).parts[-3] if len(Path(row["Path"]).parts) >= 3 else f"line{line}"
        items.append({"image": str(image), "cawe_label": np.asarray(label, np.float32), "patient": patient})
    if not items:
        raise DatasetLayoutError(path, "has no frontal image rows", CHEXPERT_LAYOUT)
    return items


def chexpert_datalist(
    chexpert_dir: str | Path, split: str = "train", uncertain: str = "ones", seed: int = 0
) -> list[dict[str, object]]:
    """CheXpert training rows split by patient into ``train`` (90 %) and ``val`` (10 %, early stopping).

    Raises:
        DatasetLayoutError: see :func:`read_chexpert_csv`, or an unknown split.
    """
    items = read_chexpert_csv(Path(chexpert_dir) / "CheXpert-v1.0-small" / "train.csv", chexpert_dir, uncertain)
    if split == "all":
        return items
    if split not in ("train", "val"):
        raise DatasetLayoutError(chexpert_dir, f"unknown CheXpert split '{split}'; choose train, val or all")
    keep = set(split_groups([str(i["patient"]) for i in items], (0.9, 0.1, 0.0), seed)[split])
    return [i for i in items if i["patient"] in keep]


def read_chest_xray(path: str | Path) -> np.ndarray:
    """The ``(H, W)`` float32 image of a chest radiograph: DICOM as displayed, or a grey PNG / JPEG.

    DICOMs go through :func:`common.data.read_mammogram_dicom` (Modality LUT, VOI LUT, MONOCHROME1 inverted); 8-bit
    JPEG/PNG (CheXpert) are read with Pillow and scaled to ``[0, 1]``; 16-bit PNGs keep their values.

    Raises:
        ImageFileError: a missing, undecodable or non-finite image.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(path, "file does not exist")
    if path.suffix.lower() in (".dcm", ".dicom", ""):
        try:
            array = read_mammogram_dicom(path)[0]
        except ImageFileError as e:
            problem = e.problem if e.problem.startswith("cannot read image") else f"cannot read image: {e.problem}"
            raise ImageFileError(path, problem) from e
    else:
        from PIL import Image

        try:
            with Image.open(path) as img:
                raw = np.asarray(img)
                if raw.ndim == 3:
                    raw = np.asarray(img.convert("L"))
        except Exception as e:
            raise ImageFileError(path, f"cannot read image ({type(e).__name__}: {e})") from e
        array = raw.astype(np.float32) / (255.0 if raw.dtype == np.uint8 else 1.0)
    array = np.asarray(array, np.float32)
    if array.ndim != 2 or min(array.shape) == 0 or not np.isfinite(array).all():
        raise ImageFileError(path, f"is not a finite 2-D grey image (shape {array.shape})")
    return array


def check_chest_xray_datalist(
    datalist: Sequence[Mapping[str, object]], image_key: str = "image", box_key: str | None = "box"
) -> Sequence[Mapping[str, object]]:
    """Decode every image of a datalist and check its boxes against it; return the datalist unchanged.

    Raises:
        DatasetError: an empty datalist.
        ImageFileError: the first image that cannot be decoded (a DICOM without pixels...) or whose boxes leave it.
    """
    for item in items_to_check(datalist, "chest radiographs", "checking radiographs"):
        path = item.get(image_key)
        if not isinstance(path, (str, Path)):
            continue
        image = read_chest_xray(path)
        boxes = item.get(box_key) if box_key else None
        if boxes is not None:
            try:
                check_boxes(boxes, image.shape, path)
            except DatasetLayoutError as e:
                raise ImageFileError(path, e.problem) from e
    return datalist
