"""Reader for dermoscopy classification data in the ISIC 2019 layout (ISIC 2020 mapped into it), with lesion masks.

The ISIC 2019 training release ships one image folder and a ground-truth CSV with one column per class (one-hot
rows); the SIIM-ISIC 2020 release ships a CSV with a free-text ``diagnosis`` and a patient id. Both are read into
the nine ISIC 2019 classes (:data:`ISIC_CLASSES`, ``UNK`` = unknown), as Bolelli et al. (ICPR 2024) did::

    <dataset_dir>/
      ISIC_2019_Training_GroundTruth.csv        image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC[,UNK]
      ISIC_2019_Training_Input/<image>.jpg
      [ISIC_2020_Training_GroundTruth.csv]      image_name,patient_id,...,diagnosis,benign_malignant,target
      [ISIC_2020_Training_JPEG/[train/]<image_name>.jpg]
      [masks/<image>_segmentation.png]           lesion masks (ISIC's task-1 naming; <image>.png also accepted)
      [splits.json]                             {"train": [...], "val": [...], "test": [...]} of image names

At least one of the two CSVs must exist. An image listed in both is kept once (the 2019 row wins). Without
``splits.json`` the images are split per class by a seeded shuffle of *patients* when the CSV names them (ISIC
2020; ISIC 2019 images are their own group), so no patient spans two splits.

:func:`isic_datalist` raises :class:`DatasetLayoutError` naming the CSV (unknown class column, a row that is not
one-hot, a row whose image is missing); :func:`check_isic_datalist` decodes every image and mask before anything
is written and raises :class:`ImageFileError` naming the file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DatasetLayoutError, ImageFileError
from .splits import split_groups
from .validation import check_image, check_image_datalist, items_to_check, spatial_shape

__all__ = [
    "ISIC_2020_DIAGNOSIS_TO_CLASS",
    "ISIC_CLASSES",
    "ISIC_LAYOUT",
    "MELANOMA_INDEX",
    "check_isic_datalist",
    "isic_cases",
    "isic_datalist",
]

ISIC_CLASSES = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")
MELANOMA_INDEX = 0

# ISIC 2020 diagnoses in the 2019 classes (Bolelli et al. Table 1: only MEL, NV, BKL and unknown occur)
ISIC_2020_DIAGNOSIS_TO_CLASS = {
    "melanoma": "MEL",
    "nevus": "NV",
    "seborrheic keratosis": "BKL",
    "lentigo nos": "BKL",
    "lichenoid keratosis": "BKL",
    "solar lentigo": "BKL",
    "unknown": "UNK",
    "cafe-au-lait macule": "UNK",
    "atypical melanocytic proliferation": "UNK",
}

ISIC_LAYOUT = """\
<dataset_dir>/
  ISIC_2019_Training_GroundTruth.csv     image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC[,UNK] (one-hot rows)
  ISIC_2019_Training_Input/<image>.jpg
  [ISIC_2020_Training_GroundTruth.csv]   image_name,patient_id,...,diagnosis,... (diagnosis mapped to the 2019 classes)
  [ISIC_2020_Training_JPEG/[train/]<image_name>.jpg]
  [masks/<image>_segmentation.png]        lesion masks (needed by the asymmetry, borders, mask and diameter variants)
  [splits.json]                          {"train": [...], "val": [...], "test": [...]} of image names
"""

CSV_2019 = "ISIC_2019_Training_GroundTruth.csv"
CSV_2020 = "ISIC_2020_Training_GroundTruth.csv"
IMAGES_2019 = "ISIC_2019_Training_Input"
IMAGES_2020 = ("ISIC_2020_Training_JPEG/train", "ISIC_2020_Training_JPEG", "train")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "val", "test", "trainval", "all")


def _find_image(folders: Sequence[Path], name: str) -> Path | None:
    for folder in folders:
        for suffix in IMAGE_SUFFIXES:
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return path
    return None


def _find_mask(mask_dir: Path, name: str) -> Path | None:
    for stem in (f"{name}_segmentation", name):
        path = mask_dir / f"{stem}.png"
        if path.is_file():
            return path
    return None


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetLayoutError(path, f"cannot be read as CSV ({e})", ISIC_LAYOUT) from e


def _rows_2019(path: Path, classes: Sequence[str]) -> list[tuple[str, int, str]]:
    """(image name, label, group) of the ISIC 2019 CSV."""
    header, rows = _read_csv(path)
    if not header or header[0] != "image":
        raise DatasetLayoutError(path, f"first column must be 'image', got {header[:1]}", ISIC_LAYOUT)
    columns = header[1:]
    unknown = [c for c in columns if c not in classes]
    if unknown:
        raise DatasetLayoutError(path, f"unknown class column(s) {unknown} (classes: {list(classes)})", ISIC_LAYOUT)
    result = []
    for line, row in enumerate(rows, start=2):
        try:
            values = np.asarray([float(row[c]) for c in columns])
        except (TypeError, ValueError) as e:
            raise DatasetLayoutError(path, f"line {line} ({row.get('image')}): non-numeric class value ({e})") from e
        if not (np.isin(values, (0.0, 1.0)).all() and values.sum() == 1):
            raise DatasetLayoutError(path, f"line {line} ({row['image']}): class columns are not one-hot: {values}")
        result.append((row["image"], classes.index(columns[int(values.argmax())]), row["image"]))
    return result


def _rows_2020(path: Path, classes: Sequence[str]) -> list[tuple[str, int, str]]:
    """(image name, label, group = patient) of the ISIC 2020 CSV, diagnoses mapped to the 2019 classes."""
    header, rows = _read_csv(path)
    missing = [c for c in ("image_name", "diagnosis") if c not in header]
    if missing:
        raise DatasetLayoutError(path, f"missing column(s) {missing}", ISIC_LAYOUT)
    result = []
    for line, row in enumerate(rows, start=2):
        diagnosis = (row["diagnosis"] or "").strip().lower()
        name = ISIC_2020_DIAGNOSIS_TO_CLASS.get(diagnosis)
        if name is None or name not in classes:
            raise DatasetLayoutError(
                path,
                f"line {line} ({row['image_name']}): diagnosis '{row['diagnosis']}' has no class "
                f"(known: {sorted(ISIC_2020_DIAGNOSIS_TO_CLASS)})",
            )
        result.append((row["image_name"], classes.index(name), row.get("patient_id") or row["image_name"]))
    return result


def isic_cases(
    dataset_dir: str | Path, classes: Sequence[str] = ISIC_CLASSES, mask_dir: str | Path | None = None
) -> list[dict[str, object]]:
    """Every labelled image: items ``{"image", "label", "case", "group"[, "mask"]}``.

    Args:
        dataset_dir: root in :data:`ISIC_LAYOUT`.
        classes: class names in label order (the CSV columns must be among them).
        mask_dir: lesion mask folder (default ``<dataset_dir>/masks`` when it exists); ``mask`` is set for the
            images that have one.

    Raises:
        DatasetLayoutError: missing root or CSVs, an unknown class column, a row that is not one-hot, an unmapped
            ISIC 2020 diagnosis, or a row whose image file does not exist (naming the CSV line).
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetLayoutError(root, "dataset folder does not exist", ISIC_LAYOUT)
    sources = []
    if (root / CSV_2019).is_file():
        sources.append((root / CSV_2019, _rows_2019(root / CSV_2019, list(classes)), [root / IMAGES_2019]))
    if (root / CSV_2020).is_file():
        sources.append((root / CSV_2020, _rows_2020(root / CSV_2020, list(classes)), [root / p for p in IMAGES_2020]))
    if not sources:
        raise DatasetLayoutError(root, f"holds neither {CSV_2019} nor {CSV_2020}", ISIC_LAYOUT)
    masks = Path(mask_dir) if mask_dir is not None else root / "masks"
    items: list[dict[str, object]] = []
    seen: set[str] = set()
    for csv_path, rows, folders in sources:
        for line, (name, label, group) in enumerate(rows, start=2):
            if name in seen:
                continue  # ISIC 2020 re-publishes some 2019 images: keep one copy
            seen.add(name)
            image = _find_image(folders, name)
            if image is None:
                raise DatasetLayoutError(
                    csv_path, f"line {line}: image '{name}' not found in {[str(f) for f in folders]}", ISIC_LAYOUT
                )
            item: dict[str, object] = {"image": str(image), "label": label, "case": name, "group": group}
            mask = _find_mask(masks, name) if masks.is_dir() else None
            if mask is not None:
                item["mask"] = str(mask)
            items.append(item)
    return items


def isic_datalist(
    dataset_dir: str | Path,
    split: str = "train",
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    classes: Sequence[str] = ISIC_CLASSES,
    mask_dir: str | Path | None = None,
    require_masks: bool = False,
) -> list[dict[str, object]]:
    """Items of one split (``train``, ``val``, ``test``, ``trainval`` or ``all``).

    Args:
        dataset_dir: root in :data:`ISIC_LAYOUT`.
        split: which split.
        seed: seed of the patient-grouped shuffle used without ``splits.json`` (stratified by each patient's class:
            melanoma if any of their images is one, else their commonest class).
        fractions: train / val / test fractions (the paper: 46,379 / 1,159 / 10,426 images).
        classes: class names in label order.
        mask_dir: lesion mask folder (default ``<dataset_dir>/masks``).
        require_masks: every returned item must have a mask (the debasing variants that read it).

    Raises:
        ValueError: unknown split.
        DatasetLayoutError: see :func:`isic_cases`; an unreadable ``splits.json`` or one naming unknown images; a
            missing mask when ``require_masks``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got '{split}'")
    items = isic_cases(dataset_dir, classes, mask_dir)
    if split != "all":
        split_file = Path(dataset_dir) / "splits.json"
        if split_file.is_file():
            try:
                lists = json.loads(split_file.read_text())
            except (OSError, ValueError) as e:
                raise DatasetLayoutError(split_file, f"cannot be read as JSON ({e})", ISIC_LAYOUT) from e
            known = {str(i["case"]) for i in items}
            for key in ("train", "val", "test"):
                missing = sorted(set(lists.get(key, [])) - known)
                if missing:
                    raise DatasetLayoutError(split_file, f"'{key}' names images not in the CSVs: {missing[:5]}")
        else:
            # stratify patients (groups) by their class: melanoma if any image is one, else their commonest class
            labels_of: dict[str, list[int]] = {}
            for i in items:
                labels_of.setdefault(str(i["group"]), []).append(int(i["label"]))
            stratum = {
                g: MELANOMA_INDEX if MELANOMA_INDEX in ls else int(np.bincount(ls).argmax())
                for g, ls in labels_of.items()
            }
            group_split: dict[str, str] = {}
            for label in sorted(set(stratum.values())):
                parts = split_groups(sorted(g for g, c in stratum.items() if c == label), fractions, seed)
                group_split.update({g: key for key, groups in parts.items() for g in groups})
            lists = {key: [str(i["case"]) for i in items if group_split[str(i["group"])] == key] for key in SPLITS[:3]}
        names = set(lists["train"]) | set(lists["val"]) if split == "trainval" else set(lists[split])
        items = [i for i in items if i["case"] in names]
    if require_masks:
        missing = [str(i["case"]) for i in items if "mask" not in i]
        if missing:
            folder = Path(mask_dir) if mask_dir is not None else Path(dataset_dir) / "masks"
            raise DatasetLayoutError(
                folder,
                f"{len(missing)} image(s) have no lesion mask (first: {missing[0]}_segmentation.png); the "
                "chosen debasing variant needs one per image",
                ISIC_LAYOUT,
            )
    return items


def check_isic_datalist(
    datalist: Sequence[Mapping[str, object]], min_size: int = 32, progress: bool = True
) -> Sequence[Mapping[str, object]]:
    """Decode every RGB image (and its mask, when listed) before anything is written; return the datalist.

    Images: readable, 3 channels, at least ``min_size`` pixels, not constant (:func:`check_image_datalist`).
    Masks: readable, one channel, the image's size, not empty.

    Raises:
        DatasetError: empty datalist.
        ImageFileError: the first bad file, named with its problem.
    """
    for item in items_to_check(datalist, "images", "checking images and lesion masks", progress):
        image_path = item.get("image")
        if not isinstance(image_path, (str, Path)):
            continue  # arrays handed over by MONAI Label
        check_image_datalist([item], image_channels=3, min_size=min_size, progress=False)
        mask_path = item.get("mask")
        if not isinstance(mask_path, (str, Path)):
            continue
        mask = check_image(mask_path, channels=(1, 3, 4), spatial_ndim=2)
        with Image.open(image_path) as img:  # already decoded above: the header gives the size
            image_shape = (img.height, img.width)
        mask_shape = spatial_shape(mask, Path(mask_path))
        if mask_shape != image_shape:
            raise ImageFileError(
                mask_path, f"mask size {mask_shape} differs from its image's {image_shape} ({image_path})"
            )
        if not (np.asarray(mask) > 0).any():
            raise ImageFileError(mask_path, "mask is empty (no lesion pixel)")
    return datalist
