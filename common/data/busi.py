"""Reader for breast ultrasound classification data in class folders (the BUSI layout) and for OOD image sets.

In-distribution data: one folder per class, as the public BUSI dataset (Al-Dhabyani et al. 2020) ships it::

    <dataset_dir>/
      normal/normal (1).png ...            B-mode images
      normal/normal (1)_mask.png ...       BUSI's lesion masks: ignored (names ending in _mask or _mask_<k>)
      benign/benign (1).png ...
      malignant/malignant (1).png ...
      [splits.json]                        optional {"train": [...], "val": [...], "test": [...],
                                                     "calibration": [...]}, paths relative to <dataset_dir>

``calibration`` (optional) lists the images on which OOD thresholds are fitted (the paper fits them on its POCUS
training images); it defaults to the ``train`` split. Without ``splits.json``, each class is split on its own by a
seeded shuffle (stratified).

Out-of-distribution sets: one folder per set, every image in it is OOD::

    <ood_dir>/
      <set_name>/*.png                     e.g. mnist/, corrupt_pocus/, cca/

Both readers raise :class:`DatasetLayoutError` naming the folder; :func:`common.data.check_image_datalist` decodes
every file and raises :class:`ImageFileError` naming the file (unreadable, wrong channel count, too small,
constant).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from ..image_io import RASTER_SUFFIXES
from .errors import DatasetLayoutError
from .splits import split_groups

__all__ = [
    "BUSI_CLASSES",
    "BUSI_LAYOUT",
    "OOD_LAYOUT",
    "busi_cases",
    "busi_datalist",
    "ood_datalists",
]

BUSI_CLASSES = ("normal", "benign", "malignant")

BUSI_LAYOUT = """\
<dataset_dir>/
  normal/<name>.png        one folder per class (normal, benign, malignant); PNG, JPEG, BMP or TIFF
  benign/<name>.png        BUSI's *_mask.png / *_mask_<k>.png files are ignored
  malignant/<name>.png
  [ood/<set>/<name>.png]   optional OOD sets (the default --ood_dir)
  [splits.json]            optional {"train": [...], "val": [...], "test": [...], "calibration": [...]}
                           with paths relative to <dataset_dir>, e.g. "benign/benign (1).png"
"""

OOD_LAYOUT = """\
<ood_dir>/
  <set_name>/<name>.png    one folder per OOD set (e.g. mnist/, corrupt_pocus/, cca/); every image is OOD
"""

SPLITS = ("train", "val", "test", "trainval", "calibration", "all")
_MASK = re.compile(r"_mask(_\d+)?$", re.IGNORECASE)


def _images_in(folder: Path) -> list[Path]:
    """Image files of a folder (no masks, no hidden files), sorted by name."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in RASTER_SUFFIXES
        and not p.name.startswith(".")
        and not _MASK.search(p.stem)
    )


def _class_folder_layout(classes: Sequence[str]) -> str:
    """The expected-layout text for class folders other than BUSI's."""
    lines = ["<dataset_dir>/"] + [
        f"  {name}/<name>.png        one folder per class (PNG, JPEG, BMP or TIFF)" for name in classes
    ]
    lines.append('  [splits.json]            optional {"train": [...], "val": [...], "test": [...]} of relative paths')
    return "\n".join(lines) + "\n"


def busi_cases(
    dataset_dir: str | Path, classes: Sequence[str] = BUSI_CLASSES, ignore_dirs: Sequence[str] = ("ood",)
) -> list[dict[str, object]]:
    """Every image of the class folders: items ``{"image": path, "label": class index, "case": relative path}``.

    Args:
        dataset_dir: root holding one folder per class.
        classes: class folder names, in label order.
        ignore_dirs: sub-folders that are not classes (the default OOD folder ``ood``); hidden folders are ignored.

    Raises:
        DatasetLayoutError: missing root, a folder that is not a known class (a typo, or another dataset's class),
            a missing class folder or a class folder without images.
    """
    layout = BUSI_LAYOUT if tuple(classes) == BUSI_CLASSES else _class_folder_layout(classes)
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetLayoutError(root, "dataset folder does not exist", layout)
    folders = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")} - set(ignore_dirs)
    if not folders & set(classes):
        raise DatasetLayoutError(root, f"holds none of the class folders {list(classes)}", layout)
    unknown = sorted(folders - set(classes))
    if unknown:
        raise DatasetLayoutError(
            root / unknown[0], f"is not a class folder (classes: {list(classes)}; unknown: {unknown})", layout
        )
    items: list[dict[str, object]] = []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise DatasetLayoutError(folder, f"class folder '{name}' is missing", layout)
        images = _images_in(folder)
        if not images:
            raise DatasetLayoutError(folder, f"class folder '{name}' holds no images", layout)
        items += [{"image": str(p), "label": label, "case": f"{name}/{p.name}"} for p in images]
    return items


def _read_splits(split_file: Path, cases: set[str]) -> dict[str, list[str]]:
    try:
        splits = json.loads(split_file.read_text())
        lists = {k: [str(c) for c in splits[k]] for k in ("train", "val", "test")}
        if "calibration" in splits:
            lists["calibration"] = [str(c) for c in splits["calibration"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetLayoutError(split_file, f"cannot read the train/val/test lists ({exc!r})", BUSI_LAYOUT) from exc
    for key, names in lists.items():
        missing = sorted(set(names) - cases)
        if missing:
            raise DatasetLayoutError(
                split_file, f"'{key}' lists {len(missing)} image(s) not in the class folders, e.g. '{missing[0]}'"
            )
    return lists


def busi_datalist(
    dataset_dir: str | Path,
    split: str = "train",
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    classes: Sequence[str] = BUSI_CLASSES,
    ignore_dirs: Sequence[str] = ("ood",),
) -> list[dict[str, object]]:
    """Items of one split: ``{"image": path, "label": int, "case": "<class>/<file>"}``.

    Args:
        dataset_dir: root in the class-folder layout (:data:`BUSI_LAYOUT`).
        split: ``train``, ``val``, ``test``, ``trainval`` (train + val), ``calibration`` (where OOD thresholds
            are fitted: ``splits.json``'s list, else ``train``) or ``all``.
        seed: seed of the stratified shuffle used without ``splits.json``.
        fractions: train / val / test fractions of each class without ``splits.json``.
        classes: class folder names in label order.
        ignore_dirs: sub-folders that are not classes.

    Raises:
        ValueError: unknown split.
        DatasetLayoutError: see :func:`busi_cases`, or a ``splits.json`` that cannot be read or names
            images that do not exist.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got '{split}'")
    items = busi_cases(dataset_dir, classes, ignore_dirs)
    if split == "all":
        return items
    split_file = Path(dataset_dir) / "splits.json"
    if split_file.is_file():
        lists = _read_splits(split_file, {str(i["case"]) for i in items})
    else:
        lists = {"train": [], "val": [], "test": []}
        for label in range(len(classes)):
            parts = split_groups([str(i["case"]) for i in items if i["label"] == label], fractions, seed)
            for key in lists:
                lists[key] += parts[key]
    lists.setdefault("calibration", lists["train"])
    names = set(lists["train"]) | set(lists["val"]) if split == "trainval" else set(lists[split])
    return [i for i in items if i["case"] in names]


def ood_datalists(ood_dir: str | Path, sets: Sequence[str] | None = None) -> dict[str, list[dict[str, object]]]:
    """The OOD sets of ``ood_dir``: set name -> items ``{"image": path, "case": "<set>/<file>", "ood_set": name}``.

    Args:
        ood_dir: root with one folder per OOD set (:data:`OOD_LAYOUT`).
        sets: the set folders to read (default: every non-hidden folder, sorted).

    Raises:
        DatasetLayoutError: missing root, no set folder, a requested set that is missing or a set without images.
    """
    root = Path(ood_dir)
    if not root.is_dir():
        raise DatasetLayoutError(root, "OOD folder does not exist", OOD_LAYOUT)
    names = (
        list(sets)
        if sets is not None
        else sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    )
    if not names:
        raise DatasetLayoutError(root, "holds no OOD set folders", OOD_LAYOUT)
    result = {}
    for name in names:
        folder = root / name
        if not folder.is_dir():
            raise DatasetLayoutError(folder, f"OOD set '{name}' is missing", OOD_LAYOUT)
        images = _images_in(folder)
        if not images:
            raise DatasetLayoutError(folder, f"OOD set '{name}' holds no images", OOD_LAYOUT)
        result[name] = [{"image": str(p), "case": f"{name}/{p.name}", "ood_set": name} for p in images]
    return result
