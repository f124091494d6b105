"""Reader for multiphoton (MPM) thyroid regions of interest: BSHG, FSHG and TPEF stacked as one 3-channel file.

Dataset layout (``dataset_dir``), the form every workflow reads::

  sections.csv                 section,label      (label FA or FTC: the H&E diagnosis of the tissue section)
  <section>/<roi>.png          one 3-channel 8-bit image per region of interest: R = BSHG, G = FSHG, B = TPEF
  splits.json                  optional {"train": [sections], "val": [...], "test": [...]}

The microscope's raw layout (BSHG / FSHG as linear-polarisation series 0..180 deg in 20 deg steps, TPEF one image)
is converted into it by :func:`convert_mpm_rois`, which averages the 9 polarisation images 0..160 deg (180 deg
repeats 0 deg, as the paper), scales each modality of each region to 0..255 (0.5 / 99.5 percentiles) and stacks::

  raw_dir/<section>/<roi>/BSHG/BSHG_pol_lin_<deg>.tif    deg = 0, 20, ..., 180
  raw_dir/<section>/<roi>/FSHG/FSHG_pol_lin_<deg>.tif
  raw_dir/<section>/<roi>/TPEF.tif

Splits are by tissue section, never by region: each class's sections are split on their own (70:10:20) so that both
classes reach every split.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..image_io import read_image_array
from .atomic import write_folder_atomically
from .errors import DatasetLayoutError, ImageFileError
from .splits import split_groups
from .validation import check_image_datalist

__all__ = [
    "MPM_CLASSES",
    "MPM_LAYOUT",
    "MPM_RAW_LAYOUT",
    "POLARISATION_ANGLES",
    "average_polarisation",
    "check_mpm_datalist",
    "convert_mpm_rois",
    "mpm_datalist",
    "mpm_regions",
    "scale_modality",
]

MPM_CLASSES = ("FA", "FTC")
_MODALITIES = ("BSHG", "FSHG", "TPEF")  # the channels of a region image, in order
#: angles of the BSHG / FSHG linear-polarisation series; the last (180) repeats the first and is not averaged
POLARISATION_ANGLES = tuple(range(0, 181, 20))
MPM_LAYOUT = """\
  sections.csv               header 'section,label'; label FA or FTC
  <section>/<roi>.png        3-channel PNG or TIFF per region: R = BSHG, G = FSHG, B = TPEF
  splits.json                optional {"train": [sections], "val": [...], "test": [...]}
"""
MPM_RAW_LAYOUT = """\
  <section>/<roi>/BSHG/BSHG_pol_lin_<deg>.tif   deg = 0, 20, ..., 160 (180 optional, ignored)
  <section>/<roi>/FSHG/FSHG_pol_lin_<deg>.tif
  <section>/<roi>/TPEF.tif
"""
_IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def _read_sections(root: Path, classes: Sequence[str]) -> dict[str, int]:
    table = root / "sections.csv"
    if not table.is_file():
        raise DatasetLayoutError(table, "sections.csv is missing", MPM_LAYOUT)
    labels: dict[str, int] = {}
    with table.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for k, row in enumerate(rows, start=2):
        section, label = (row.get("section") or "").strip(), (row.get("label") or "").strip()
        if not section or label not in classes:
            raise DatasetLayoutError(table, f"line {k}: expected 'section,label' with label in {list(classes)}, "
                                     f"got {row}", MPM_LAYOUT)  # fmt: skip
        labels[section] = classes.index(label)
    if not labels:
        raise DatasetLayoutError(table, "sections.csv lists no section", MPM_LAYOUT)
    return labels


def mpm_regions(root: str | Path, classes: Sequence[str] = MPM_CLASSES) -> list[dict[str, object]]:
    """Every region of every listed section: ``{"image", "label", "section", "case"}``, sorted.

    Raises:
        DatasetLayoutError: missing root or sections.csv, a bad line, a listed section without folder or regions.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(root, "dataset folder does not exist", MPM_LAYOUT)
    classes = list(classes)
    labels = _read_sections(root, classes)
    items = []
    for section, label in sorted(labels.items()):
        folder = root / section
        if not folder.is_dir():
            raise DatasetLayoutError(folder, f"section '{section}' of sections.csv has no folder", MPM_LAYOUT)
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not images:
            raise DatasetLayoutError(folder, f"section '{section}' holds no region image", MPM_LAYOUT)
        for p in images:
            items.append({"image": str(p), "label": label, "section": section, "case": f"{section}/{p.name}"})
    return items


def mpm_datalist(
    root: str | Path,
    split: str = "train",
    seed: int = 0,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    classes: Sequence[str] = MPM_CLASSES,
) -> list[dict[str, object]]:
    """Regions of one split (``train``, ``val``, ``test`` or ``all``), split by tissue section.

    ``splits.json`` (section lists) wins when present; else each class's sections are split by a seeded shuffle.

    Raises:
        DatasetLayoutError: layout problems, an unknown split, or splits.json naming unknown sections.
    """
    items = mpm_regions(root, classes)
    if split == "all":
        return items
    if split not in ("train", "val", "test"):
        raise DatasetLayoutError(root, f"unknown split '{split}' (train, val, test or all)")
    split_file = Path(root) / "splits.json"
    sections = {str(i["section"]) for i in items}
    if split_file.is_file():
        try:
            chosen = set(json.loads(split_file.read_text())[split])
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetLayoutError(split_file, f"cannot read the '{split}' section list ({exc})") from exc
        unknown = sorted(chosen - sections)
        if unknown:
            raise DatasetLayoutError(split_file, f"'{split}' names unknown sections {unknown[:3]}")
    else:
        chosen = set()
        for label in range(len(classes)):
            groups = sorted({str(i["section"]) for i in items if i["label"] == label})
            if groups:
                chosen |= set(split_groups(groups, fractions, seed=seed + label)[split])
    return [i for i in items if i["section"] in chosen]


def check_mpm_datalist(
    datalist: Sequence[Mapping[str, object]],
    image_size: int | None = None,
    image_key: str = "image",
    progress: bool = True,
) -> Sequence[Mapping[str, object]]:
    """Decode and check every region image before anything is written; return the datalist unchanged.

    Each image must be readable, 2D with 3 channels (BSHG, FSHG, TPEF), ``image_size`` pixels square when given,
    finite, and no modality may be constant (a blank channel is a missing or failed acquisition).

    Raises:
        DatasetError: empty datalist.
        ImageFileError: the first bad file, named with its problem.
    """
    return check_image_datalist(
        datalist, image_channels=3, min_size=0, image_key=image_key, progress=progress, image_size=image_size,
        channel_names=_MODALITIES, what="regions", desc="checking region images",
    )  # fmt: skip


def average_polarisation(folder: str | Path, modality: str, angles: Sequence[int] = POLARISATION_ANGLES) -> np.ndarray:
    """Mean of the ``<modality>_pol_lin_<deg>.tif`` series in ``folder`` over the angles below 180 deg.

    Raises:
        DatasetLayoutError: a polarisation image is missing.
        ImageFileError: an image is unreadable, not 2D or differs in size from the first.
    """
    folder = Path(folder)
    stack = []
    for deg in angles:
        if deg >= 180:  # 180 deg duplicates 0 deg
            continue
        path = folder / f"{modality}_pol_lin_{deg}.tif"
        if not path.is_file():
            raise DatasetLayoutError(path, f"{modality} polarisation image at {deg} deg is missing", MPM_RAW_LAYOUT)
        array = read_image_array(path).astype(np.float64)
        if array.ndim != 2:
            raise ImageFileError(path, f"has shape {array.shape}, expected one single-channel 2D image")
        if stack and array.shape != stack[0].shape:
            raise ImageFileError(path, f"size {array.shape} differs from the series' {stack[0].shape}")
        stack.append(array)
    return np.mean(stack, axis=0)


def scale_modality(array: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Scale one modality to uint8 0..255 between its ``low`` and ``high`` percentiles (per region).

    Raises:
        ValueError: for a constant image (nothing to scale).
    """
    lo, hi = np.percentile(array, [low, high])
    if hi <= lo:
        lo, hi = float(array.min()), float(array.max())
    if hi <= lo:
        raise ValueError("the image is constant")
    return np.clip(np.round((array - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)


def convert_mpm_rois(
    raw_dir: str | Path,
    out_dir: str | Path,
    section_labels: Mapping[str, str],
    overwrite: bool = False,
) -> Path:
    """Convert the microscope's per-modality files into the 3-channel layout every workflow reads (atomically).

    Args:
        raw_dir: ``<section>/<roi>/{BSHG/, FSHG/, TPEF.tif}`` (see :data:`MPM_RAW_LAYOUT`).
        out_dir: the dataset folder to write (``sections.csv`` + ``<section>/<roi>.png``).
        section_labels: ``{section: "FA" | "FTC"}`` for every section to convert.
        overwrite: replace an existing ``out_dir``.

    Raises:
        DatasetLayoutError: a missing section folder or modality file (named), an unknown label.
        ImageFileError: an unreadable, wrongly shaped or constant modality image (named).
    """
    raw_dir = Path(raw_dir)
    jobs = []
    for section, label in sorted(section_labels.items()):
        if label not in MPM_CLASSES:
            raise DatasetLayoutError(raw_dir / section, f"label '{label}' is not one of {list(MPM_CLASSES)}")
        folder = raw_dir / section
        rois = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        if not rois:
            raise DatasetLayoutError(folder, f"section '{section}' has no region folder", MPM_RAW_LAYOUT)
        jobs += [(section, roi) for roi in rois]
    stacks = {}
    for section, roi in jobs:  # everything is read and checked before anything is written
        tpef_path = roi / "TPEF.tif"
        if not tpef_path.is_file():
            raise DatasetLayoutError(tpef_path, "TPEF image is missing", MPM_RAW_LAYOUT)
        channels = [average_polarisation(roi / "BSHG", "BSHG"), average_polarisation(roi / "FSHG", "FSHG")]
        tpef = read_image_array(tpef_path).astype(np.float64)
        if tpef.shape != channels[0].shape:
            raise ImageFileError(tpef_path, f"shape {tpef.shape} differs from BSHG's {channels[0].shape}")
        if channels[1].shape != channels[0].shape:
            raise ImageFileError(roi / "FSHG", f"shape {channels[1].shape} differs from BSHG's {channels[0].shape}")
        scaled = []
        for name, array in zip(_MODALITIES, channels + [tpef]):
            try:
                scaled.append(scale_modality(array))
            except ValueError as exc:
                raise ImageFileError(roi / name, f"{name} is constant: a blank or failed acquisition") from exc
        stacks[(section, roi.name)] = np.stack(scaled, -1)

    def fill(tmp: Path) -> None:
        with (tmp / "sections.csv").open("w", newline="") as f:
            f.write("section,label\n" + "".join(f"{s},{section_labels[s]}\n" for s in sorted(section_labels)))
        for (section, roi), stack in stacks.items():
            (tmp / section).mkdir(exist_ok=True)
            Image.fromarray(stack).save(tmp / section / f"{roi}.png")

    return write_folder_atomically(out_dir, fill, overwrite=overwrite)
