"""Mammography detection datasets: the INbreast layout, one datalist entry point, and the up-front file check.

Two on-disk layouts are read into the same box datalist (``{"image", "box", "label", "patient"}``, boxes
``x1, y1, x2, y2`` in the file's pixels, see :mod:`common.data.boxes`):

- ``csv``: :data:`common.data.CALCIFICATION_LAYOUT` (``images/`` + ``boxes.csv`` + ``splits.json``), the generated
  sample's layout; the images may be DICOM or the authors' 16-bit grey PNGs (Cantone et al. stored OMI-DB as such);
- ``inbreast``: :data:`INBREAST_LAYOUT`, the INbreast release as distributed (``AllDICOMs/`` + ``AllXML/``), whose
  calcification ROIs become cluster boxes by :func:`common.data.inbreast_cluster_boxes`' rule.

:func:`check_mammogram_datalist` decodes every image once, finds its breast region and checks its boxes, so a bad
file stops a workflow with one message naming it before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .boxes import check_boxes, inbreast_cluster_boxes, read_image_size, read_inbreast_xml
from .calcification_sample import CALCIFICATION_LAYOUT, calcification_datalist
from .errors import DatasetLayoutError, ImageFileError
from .mammography import breast_region_box, read_mammogram_dicom, read_mammogram_png
from .splits import split_groups
from .validation import items_to_check

__all__ = [
    "INBREAST_LAYOUT",
    "MAMMOGRAPHY_LAYOUTS",
    "check_mammogram_datalist",
    "inbreast_datalist",
    "mammography_datalist",
    "read_mammogram",
]

INBREAST_LAYOUT = """\
<root>/                                         the INbreast release folder ("INbreast Release 1.0")
  AllDICOMs/<file id>_<patient>_MG_<L|R>_<CC|ML>_ANON.dcm   one full-field digital mammogram per file
  AllXML/<file id>.xml                          OsiriX plist ROIs of the annotated images (Calcification, Cluster,
                                                Mass, ...); an image without an XML file has no finding
  (INbreast.csv, AllROI/, MedicalReports/, PectoralMuscle/ ... are not read)
"""

#: layout name -> what it expects (the ``layout`` switch of the bundle)
MAMMOGRAPHY_LAYOUTS = ("csv", "inbreast")

_INBREAST_NAME = re.compile(r"^(?P<file>\d+)_(?P<patient>[0-9a-fA-F]+)_MG_(?P<side>[LR])_(?P<view>[A-Z]+)_ANON$")
_SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


def inbreast_datalist(
    root: str | Path,
    split: str = "all",
    seed: int = 0,
    fractions: Sequence[float] = _SPLIT_FRACTIONS,
    distance: float = 100.0,
    min_calcifications: int = 3,
    margin: float = 7.0,
) -> list[dict[str, object]]:
    """Box datalist of an INbreast release folder (:data:`INBREAST_LAYOUT`).

    Each ``AllDICOMs`` file is one item; its patient is the second field of the file name. Cluster boxes come from
    ``AllXML/<file id>.xml`` through :func:`common.data.inbreast_cluster_boxes` (drawn ``Cluster`` ROIs, plus groups
    of at least ``min_calcifications`` calcifications linked within ``distance`` px, padded by ``margin`` px), with
    every point checked against the image size read from the DICOM header. Images without an XML file or without
    calcification ROIs are normal (no box).

    Args:
        root: the release folder.
        split: ``"all"`` (the paper's use of INbreast: an external test set), or ``"train"``, ``"val"``,
            ``"test"`` of a patient-level split drawn with ``seed``.
        seed: seed of the patient-level split.
        fractions: train/val/test fractions of the patients.
        distance: single-linkage distance between calcification centres, px.
        min_calcifications: smallest group that counts as a cluster.
        margin: padding of grouped boxes, px.

    Returns:
        ``{"image", "box", "label", "patient"}`` items sorted by file name.

    Raises:
        DatasetLayoutError: a missing ``AllDICOMs`` folder, no DICOM in it, a file name not in the INbreast form,
            an unknown split, or an XML file :func:`common.data.read_inbreast_xml` rejects (naming the file).
        ImageFileError: a DICOM header that cannot be read.
    """
    root = Path(root)
    dicom_dir, xml_dir = root / "AllDICOMs", root / "AllXML"
    if not dicom_dir.is_dir():
        raise DatasetLayoutError(dicom_dir, "folder does not exist", INBREAST_LAYOUT)
    files = sorted(p for p in dicom_dir.iterdir() if p.suffix.lower() == ".dcm")
    if not files:
        raise DatasetLayoutError(dicom_dir, "holds no .dcm file", INBREAST_LAYOUT)
    if split not in ("all", "train", "val", "test"):
        raise DatasetLayoutError(root, f"unknown split '{split}' (all, train, val, test)")
    items = []
    for path in files:
        match = _INBREAST_NAME.match(path.stem)
        if match is None:
            raise DatasetLayoutError(
                path, "file name is not <file id>_<patient>_MG_<L|R>_<view>_ANON.dcm", INBREAST_LAYOUT
            )
        xml = xml_dir / f"{match['file']}.xml"
        boxes = np.zeros((0, 4), np.float32)
        if xml.is_file():
            shape = read_image_size(path)
            rois = read_inbreast_xml(xml)
            boxes = inbreast_cluster_boxes(rois, distance, min_calcifications, margin, image_shape=shape)
            boxes = check_boxes(boxes, shape, xml)
        items.append(
            {
                "image": str(path),
                "box": boxes,
                "label": np.zeros(len(boxes), np.int64),
                "patient": match["patient"],
            }
        )
    if split == "all":
        return items
    parts = split_groups([str(i["patient"]) for i in items], fractions, seed=seed)
    wanted = set(parts[split])
    return [i for i in items if i["patient"] in wanted]


def mammography_datalist(dataset_dir: str | Path, split: str, layout: str = "csv", seed: int = 0) -> list[dict]:
    """Box datalist of ``dataset_dir`` in one of :data:`MAMMOGRAPHY_LAYOUTS`.

    Args:
        dataset_dir: the dataset folder.
        split: a split of ``splits.json`` (``csv``) or of :func:`inbreast_datalist` (``inbreast``; ``all`` for the
            whole release).
        layout: ``"csv"`` (:data:`common.data.CALCIFICATION_LAYOUT`, DICOM or 16-bit PNG images) or ``"inbreast"``.
        seed: seed of the INbreast patient split.

    Returns:
        The items of the split.

    Raises:
        ValueError: an unknown layout.
        DatasetLayoutError: a missing folder or one in another layout (with the expected layout printed).
    """
    if layout not in MAMMOGRAPHY_LAYOUTS:
        raise ValueError(f"layout must be one of {list(MAMMOGRAPHY_LAYOUTS)}, got '{layout}'")
    root = Path(dataset_dir)
    if not root.is_dir():
        expected = CALCIFICATION_LAYOUT if layout == "csv" else INBREAST_LAYOUT
        raise DatasetLayoutError(root, "dataset folder does not exist", expected)
    if layout == "inbreast":
        return inbreast_datalist(root, split, seed=seed)
    return calcification_datalist(root, split)


def read_mammogram(path: str | Path) -> np.ndarray:
    """The ``(H, W)`` float32 image of a DICOM (as displayed) or grey PNG mammogram.

    Args:
        path: the file (``.dcm``/``.dicom``/no suffix: DICOM; ``.png``: the 16-bit PNG layout).

    Returns:
        The image, high = bright.

    Raises:
        ImageFileError: a missing file, another file type, or a file that cannot be decoded (the message starts
            with ``cannot read image``).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(path, "file does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".dcm", ".dicom", "", ".png"):
        raise ImageFileError(path, f"unsupported mammogram file type '{suffix}' (expected .dcm or .png)")
    try:
        array = read_mammogram_dicom(path)[0] if suffix != ".png" else read_mammogram_png(path)
    except ImageFileError as e:
        problem = e.problem if e.problem.startswith("cannot read image") else f"cannot read image: {e.problem}"
        raise ImageFileError(path, problem) from e
    if not np.isfinite(array).all():
        raise ImageFileError(path, "cannot read image: it holds NaN or infinite values")
    return array


def check_mammogram_datalist(
    datalist: Sequence[Mapping[str, object]],
    image_key: str = "image",
    box_key: str | None = "box",
    margin: int = 8,
    min_fraction: float = 0.01,
    progress: bool = True,
) -> Sequence[Mapping[str, object]]:
    """Decode every mammogram of a datalist, find its breast and check its boxes; return the datalist unchanged.

    Per item whose image is a path: :func:`read_mammogram` (the whole pixel data is decoded), then
    :func:`common.data.breast_region_box` with the bundle's crop ``margin`` (an image without breast tissue stops
    here), then, when the item has boxes, :func:`common.data.check_boxes` against the image size and a check that
    every box overlaps the breast region (the crop would otherwise cut it away). Items passed as arrays (MONAI
    Label) are skipped.

    Args:
        datalist: the items.
        image_key: image key.
        box_key: box key (None: boxes are not checked, e.g. inference).
        margin: the breast crop's margin, px.
        min_fraction: smallest breast area, as a fraction of the image.
        progress: progress bar for long lists on a terminal.

    Returns:
        ``datalist``.

    Raises:
        DatasetError: an empty datalist.
        ImageFileError: the first bad file, naming it and the problem.
    """
    for item in items_to_check(datalist, "mammograms", "checking mammograms", progress):
        path = item.get(image_key)
        if not isinstance(path, (str, Path)):
            continue
        image = read_mammogram(path)
        x1, y1, x2, y2 = breast_region_box(image, margin=margin, min_fraction=min_fraction, source=path)
        boxes = item.get(box_key) if box_key else None
        if boxes is None:
            continue
        boxes = check_boxes(boxes, image.shape, path)
        for k, (bx1, by1, bx2, by2) in enumerate(boxes):
            if bx2 <= x1 or bx1 >= x2 or by2 <= y1 or by1 >= y2:
                raise ImageFileError(
                    path,
                    f"box {k} [{bx1:g}, {by1:g}, {bx2:g}, {by2:g}] lies outside the breast region "
                    f"[{x1}, {y1}, {x2}, {y2}]: the breast crop would cut it away",
                )
    return datalist
