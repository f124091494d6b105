"""Readers for detection annotations (COCO JSON, one-box-per-row CSV, INbreast XML) into one box datalist.

Every reader returns one item per image, in the order the annotation file lists them::

    {"image": "<image_dir>/<name>", "box": float32 (N, 4), "label": int64 (N,)[, "patient": str]}

Boxes are ``x1, y1, x2, y2`` in pixels with ``(0, 0)`` the top-left corner of the top-left pixel, so a box
covering pixel columns ``0..9`` is ``x1 = 0, x2 = 10`` (MONAI's ``xyxy`` mode for 2-D). Images without any box
(normal mammograms) are kept, with ``(0, 4)`` / ``(0,)`` arrays: every prediction on them is a false positive, so
dropping them would hide most of the false-positive rate.

The readers check that every field exists and every image file exists, then pass each image's boxes to
:func:`check_boxes` (finite, positive size, inside the image when its size is known). Every error is a
:class:`DatasetLayoutError` naming the annotation file and the line or entry; an image whose header cannot be read
is an :class:`ImageFileError` naming the image.
"""

from __future__ import annotations

import csv
import json
import math
import plistlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import DatasetLayoutError, ImageFileError

__all__ = [
    "BOX_CSV_COLUMNS",
    "BOX_CSV_LAYOUT",
    "COCO_LAYOUT",
    "INBREAST_XML_LAYOUT",
    "check_boxes",
    "inbreast_cluster_boxes",
    "read_coco_boxes",
    "read_csv_boxes",
    "read_image_size",
    "read_inbreast_xml",
]

# role -> CSV header name; ``label`` and ``patient`` columns are optional
BOX_CSV_COLUMNS = {
    "image": "image",
    "x1": "x1",
    "y1": "y1",
    "x2": "x2",
    "y2": "y2",
    "label": "label",
    "patient": "patient",
}

BOX_CSV_LAYOUT = """\
<csv_path>   header: image,x1,y1,x2,y2[,label][,patient]   (any order; other columns are ignored)
  one row per box:            mammo_001.png,120.5,300,180,352,0,P001
  one row per image w/o box:  mammo_002.png,,,,,,P001        (all four box fields empty)
  image is relative to <image_dir>; x/y in pixels (x1 < x2, y1 < y2, x2/y2 = right/bottom pixel edge)
"""

COCO_LAYOUT = """\
<json_path> {
  "images":      [{"id": 1, "file_name": "mammo_001.png", "width": 800, "height": 1280[, "patient_id": "P001"]}],
  "annotations": [{"id": 7, "image_id": 1, "bbox": [x, y, width, height], "category_id": 1}],
  ["categories": [{"id": 1, "name": "cluster"}]]
}   file_name is relative to <image_dir>; bbox in pixels from the top-left corner
"""

INBREAST_XML_LAYOUT = """\
<plist version="1.0"><dict>
  <key>Images</key><array><dict>
    <key>ROIs</key><array><dict>
      <key>Name</key><string>Calcification</string>      (or Cluster, Mass, ...)
      <key>NumberOfPoints</key><integer>1</integer>
      <key>Point_px</key><array><string>(1497.09, 2087.16)</string>...</array>
    </dict>...</array>
  </dict></array>
</dict></plist>
"""

_DICOM_SUFFIXES = (".dcm", ".dicom")
_BOX_ROLES = ("x1", "y1", "x2", "y2")


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in _DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def read_image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of a 2-D image from its header only (nothing is decoded, so it is cheap on mammograms).

    DICOM files (``.dcm`` or a ``DICM`` preamble) are read with pydicom up to the pixel data; raster images (PNG,
    JPEG, TIFF, ...) with Pillow, which reads the header lazily.

    Args:
        path: image file.

    Returns:
        ``(height, width)`` in pixels.

    Raises:
        ImageFileError: the file does not exist or its header cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(path, "file does not exist")
    try:
        if _is_dicom(path):
            import pydicom

            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if "Rows" not in ds or "Columns" not in ds:
                raise ImageFileError(path, "DICOM header has no Rows/Columns (not an image)")
            return int(ds.Rows), int(ds.Columns)
        from PIL import Image

        with Image.open(path) as img:
            return int(img.height), int(img.width)
    except ImageFileError:
        raise
    except Exception as e:  # any header failure means the same thing to the user
        raise ImageFileError(path, f"cannot read the image header ({type(e).__name__}: {e})") from e


def check_boxes(
    boxes: object,
    image_shape: Sequence[int] | None,
    source: str | Path,
    entries: Sequence[str] | None = None,
    tolerance: float = 0.5,
) -> np.ndarray:
    """Check one image's boxes and return them as float32 ``(N, 4)`` xyxy, clipped to the image.

    Checks, per box: four finite coordinates, ``x2 > x1`` and ``y2 > y1``, and — when ``image_shape`` is known —
    ``-tolerance <= x1``, ``x2 <= width + tolerance`` (same for y). The half-pixel tolerance accepts annotation
    tools that store pixel centres instead of edges; boxes within it are clipped to the image.

    Args:
        boxes: array-like ``(N, 4)`` (``N`` may be 0).
        image_shape: ``(height, width[, ...])`` of the image, or None when unknown (bounds are then not checked).
        source: the annotation file, named in every error.
        entries: where each box comes from (``"line 12 (mammo_001.png)"``), named in its error; default
            ``"box <i>"``.
        tolerance: how far (pixels) a box may cross the image border.

    Returns:
        The boxes, float32 ``(N, 4)``.

    Raises:
        DatasetLayoutError: not an ``(N, 4)`` array, a non-finite coordinate, zero or negative width or height,
            or a box outside the image, naming ``source`` and the box's entry.
    """
    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DatasetLayoutError(source, f"boxes are not numeric ({e})") from e
    if array.size == 0:
        return np.zeros((0, 4), np.float32)
    if array.ndim != 2 or array.shape[1] != 4:
        raise DatasetLayoutError(source, f"boxes must be an (N, 4) array of x1, y1, x2, y2, got shape {array.shape}")
    if entries is not None and len(entries) != len(array):
        raise ValueError(f"{len(entries)} entries for {len(array)} boxes")
    for i, (x1, y1, x2, y2) in enumerate(array):
        where = entries[i] if entries is not None else f"box {i}"
        coords = f"[{x1:g}, {y1:g}, {x2:g}, {y2:g}]"
        if not np.isfinite(array[i]).all():
            raise DatasetLayoutError(source, f"{where}: box {coords} has a non-finite (NaN or infinite) coordinate")
        if x2 <= x1 or y2 <= y1:
            raise DatasetLayoutError(
                source, f"{where}: box {coords} has zero or negative size (width {x2 - x1:g}, height {y2 - y1:g})"
            )
        if image_shape is not None:
            height, width = float(image_shape[0]), float(image_shape[1])
            if x1 < -tolerance or y1 < -tolerance or x2 > width + tolerance or y2 > height + tolerance:
                raise DatasetLayoutError(
                    source,
                    f"{where}: box {coords} lies outside the image (width {width:g}, height {height:g}) by more "
                    f"than {tolerance:g} px",
                )
    if image_shape is not None:
        array[:, 0::2] = np.clip(array[:, 0::2], 0.0, float(image_shape[1]))
        array[:, 1::2] = np.clip(array[:, 1::2], 0.0, float(image_shape[0]))
    return array.astype(np.float32)


def _item(image: Path, boxes: list, labels: list, patient: object) -> dict[str, object]:
    item: dict[str, object] = {
        "image": str(image),
        "box": np.asarray(boxes, np.float32).reshape(-1, 4),
        "label": np.asarray(labels, np.int64).reshape(-1),
    }
    if patient not in (None, ""):
        item["patient"] = str(patient)
    return item


def _load_json(path: Path, layout: str) -> object:
    if not path.is_file():
        raise DatasetLayoutError(path, "annotation file does not exist", layout)
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DatasetLayoutError(path, f"cannot be read as JSON ({e})", layout) from e


def read_coco_boxes(
    json_path: str | Path, image_dir: str | Path, category_map: Mapping[int, int] | None = None
) -> list[dict[str, object]]:
    """Box datalist of a COCO detection file (:data:`COCO_LAYOUT`), one item per listed image.

    ``bbox = [x, y, w, h]`` becomes ``[x, y, x + w, y + h]``. Images listed without annotations become items with
    no boxes. An image's ``patient_id`` (or ``patient``) field, when present, is copied to ``patient``.

    Args:
        json_path: the COCO JSON file.
        image_dir: folder the ``file_name`` fields are relative to.
        category_map: COCO ``category_id`` -> label. Default: the sorted ids of ``categories`` (or, without that
            list, of the annotations) numbered ``0, 1, ...``, because MONAI's detectors expect labels in
            ``[0, num_classes)`` while COCO ids usually start at 1.

    Returns:
        One item per image, in the order of ``images``.

    Raises:
        DatasetLayoutError: unreadable JSON; no ``images`` / ``annotations`` list; an entry without a required
            field; a duplicate image id; a missing image file; an annotation naming an unknown image or category;
            a box that fails :func:`check_boxes` against the image's ``width`` / ``height``.
    """
    path = Path(json_path)
    image_dir = Path(image_dir)
    data = _load_json(path, COCO_LAYOUT)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DatasetLayoutError(path, "has no 'images' list", COCO_LAYOUT)
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise DatasetLayoutError(path, "'annotations' is not a list", COCO_LAYOUT)

    images: dict[object, dict[str, object]] = {}
    for k, image in enumerate(data["images"]):
        where = f"images[{k}]"
        if not isinstance(image, dict):
            raise DatasetLayoutError(path, f"{where} is not an object", COCO_LAYOUT)
        missing = [f for f in ("id", "file_name", "width", "height") if f not in image]
        if missing:
            raise DatasetLayoutError(path, f"{where}: missing field(s) {missing}", COCO_LAYOUT)
        if image["id"] in images:
            raise DatasetLayoutError(path, f"{where}: duplicate image id {image['id']}")
        file = image_dir / str(image["file_name"])
        if not file.is_file():
            raise DatasetLayoutError(path, f"{where}: image '{image['file_name']}' not found in {image_dir}")
        try:
            shape = (int(image["height"]), int(image["width"]))
        except (TypeError, ValueError) as e:
            raise DatasetLayoutError(path, f"{where} ({image['file_name']}): width/height are not integers") from e
        if min(shape) <= 0:
            raise DatasetLayoutError(path, f"{where} ({image['file_name']}): width/height must be positive")
        images[image["id"]] = {
            "file": file,
            "name": str(image["file_name"]),
            "shape": shape,
            "patient": image.get("patient_id", image.get("patient")),
            "boxes": [],
            "labels": [],
            "entries": [],
        }

    if category_map is None:
        categories = data.get("categories")
        if isinstance(categories, list) and categories:
            try:
                ids = sorted({int(c["id"]) for c in categories})
            except (KeyError, TypeError, ValueError) as e:
                raise DatasetLayoutError(path, f"'categories' entries need an integer 'id' ({e})", COCO_LAYOUT) from e
        else:
            try:
                ids = sorted({int(a["category_id"]) for a in annotations if isinstance(a, dict) and "category_id" in a})
            except (TypeError, ValueError) as e:
                raise DatasetLayoutError(path, f"a category_id is not an integer ({e})", COCO_LAYOUT) from e
        category_map = {c: i for i, c in enumerate(ids)}

    for k, ann in enumerate(annotations):
        where = f"annotations[{k}]"
        if not isinstance(ann, dict):
            raise DatasetLayoutError(path, f"{where} is not an object", COCO_LAYOUT)
        if "id" in ann:
            where += f" (id {ann['id']})"
        missing = [f for f in ("image_id", "bbox", "category_id") if f not in ann]
        if missing:
            raise DatasetLayoutError(path, f"{where}: missing field(s) {missing}", COCO_LAYOUT)
        image = images.get(ann["image_id"])
        if image is None:
            raise DatasetLayoutError(path, f"{where}: image_id {ann['image_id']} is not in 'images'")
        where += f" ({image['name']})"
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DatasetLayoutError(path, f"{where}: bbox must be [x, y, width, height], got {bbox!r}")
        try:
            x, y, w, h = (float(v) for v in bbox)
        except (TypeError, ValueError) as e:
            raise DatasetLayoutError(path, f"{where}: bbox {bbox!r} is not numeric") from e
        try:
            label = category_map[int(ann["category_id"])]
        except (KeyError, TypeError, ValueError) as e:
            raise DatasetLayoutError(
                path, f"{where}: category_id {ann['category_id']!r} is not among {sorted(category_map)}"
            ) from e
        image["boxes"].append([x, y, x + w, y + h])
        image["labels"].append(label)
        image["entries"].append(where)

    items = []
    for image in images.values():
        boxes = check_boxes(image["boxes"], image["shape"], path, image["entries"])
        items.append(_item(image["file"], boxes, image["labels"], image["patient"]))
    return items


def read_csv_boxes(
    csv_path: str | Path,
    image_dir: str | Path,
    columns: Mapping[str, str] | None = None,
    image_sizes: Mapping[str, Sequence[int]] | None = None,
    read_sizes: bool = False,
    default_label: int = 0,
) -> list[dict[str, object]]:
    """Box datalist of a one-box-per-row CSV (:data:`BOX_CSV_LAYOUT`), one item per image.

    Expected header (names changeable through ``columns``, order free, other columns ignored)::

        image,x1,y1,x2,y2[,label][,patient]

    A row whose four box fields are all empty lists an image without boxes (a normal image); an image may have
    several rows. Without a ``label`` column every box gets ``default_label``; with one, every box row needs an
    integer label. All rows of an image must name the same patient.

    Args:
        csv_path: the CSV file.
        image_dir: folder the ``image`` fields are relative to.
        columns: role -> header name, overriding :data:`BOX_CSV_COLUMNS` (e.g. ``{"image": "file"}``).
        image_sizes: ``(height, width)`` per image, keyed by the CSV's ``image`` value or by the image path; used
            to check that boxes lie inside their image.
        read_sizes: read the size of images not in ``image_sizes`` from their header (:func:`read_image_size`).
        default_label: label of every box when the CSV has no label column.

    Returns:
        One item per image, in order of first appearance.

    Raises:
        DatasetLayoutError: unreadable CSV, a missing required column, an empty image field, a row with some but
            not all box fields, a non-numeric coordinate or label, a missing image file, conflicting patients, or
            a box that fails :func:`check_boxes` — naming the CSV line.
        ImageFileError: ``read_sizes`` and an image header cannot be read.
    """
    path = Path(csv_path)
    image_dir = Path(image_dir)
    names = {**BOX_CSV_COLUMNS, **(columns or {})}
    unknown = sorted(set(names) - set(BOX_CSV_COLUMNS))
    if unknown:
        raise ValueError(f"unknown column role(s) {unknown} (roles: {list(BOX_CSV_COLUMNS)})")
    if not path.is_file():
        raise DatasetLayoutError(path, "annotation file does not exist", BOX_CSV_LAYOUT)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetLayoutError(path, f"cannot be read as CSV ({e})", BOX_CSV_LAYOUT) from e
    required = [names[r] for r in ("image", *_BOX_ROLES)]
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetLayoutError(path, f"missing column(s) {missing} (header: {header})", BOX_CSV_LAYOUT)
    has_label = names["label"] in header
    has_patient = names["patient"] in header

    images: dict[str, dict[str, object]] = {}
    for line, row in rows:
        if row.get(None):
            raise DatasetLayoutError(path, f"line {line}: more fields than the header's {len(header)}")
        name = (row.get(names["image"]) or "").strip()
        if not name:
            raise DatasetLayoutError(path, f"line {line}: empty '{names['image']}' field")
        where = f"line {line} ({name})"
        image = images.get(name)
        if image is None:
            file = image_dir / name
            if not file.is_file():
                raise DatasetLayoutError(path, f"{where}: image '{name}' not found in {image_dir}")
            image = images[name] = {"file": file, "patient": None, "boxes": [], "labels": [], "entries": []}
        if has_patient:
            patient = (row.get(names["patient"]) or "").strip()
            if patient and image["patient"] not in (None, patient):
                raise DatasetLayoutError(
                    path, f"{where}: patient '{patient}' differs from '{image['patient']}' on an earlier row"
                )
            image["patient"] = patient or image["patient"]
        fields = [(row.get(names[r]) or "").strip() for r in _BOX_ROLES]
        if not any(fields):
            continue  # an image without boxes
        empty = [names[r] for r, v in zip(_BOX_ROLES, fields) if not v]
        if empty:
            raise DatasetLayoutError(path, f"{where}: missing box field(s) {empty} (leave all four empty for none)")
        coords = []
        for role, value in zip(_BOX_ROLES, fields):
            try:
                coords.append(float(value))
            except ValueError as e:
                raise DatasetLayoutError(path, f"{where}: {names[role]} '{value}' is not a number") from e
        label = default_label
        if has_label:
            value = (row.get(names["label"]) or "").strip()
            try:
                label = int(value)
            except ValueError as e:
                problem = "missing label" if not value else f"label '{value}' is not an integer"
                raise DatasetLayoutError(path, f"{where}: {problem}") from e
        image["boxes"].append(coords)
        image["labels"].append(label)
        image["entries"].append(where)

    items = []
    for name, image in images.items():
        shape = None
        if image_sizes is not None:
            shape = image_sizes.get(name, image_sizes.get(str(image["file"])))
        if shape is None and read_sizes:
            shape = read_image_size(image["file"])
        boxes = check_boxes(image["boxes"], shape, path, image["entries"])
        items.append(_item(image["file"], boxes, image["labels"], image["patient"]))
    return items


_POINT = re.compile(r"^\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*(?:,\s*[^,()]+?\s*)?\)$")


def _point(text: object) -> tuple[float, float] | None:
    match = _POINT.match(str(text).strip())
    if match is None:
        return None
    try:
        x, y = float(match.group(1)), float(match.group(2))
    except ValueError:
        return None
    return (x, y) if math.isfinite(x) and math.isfinite(y) else None


def read_inbreast_xml(xml_path: str | Path) -> list[dict[str, object]]:
    """ROIs of one INbreast annotation file (OsiriX plist XML, :data:`INBREAST_XML_LAYOUT`).

    Each ROI becomes ``{"name": str, "points": float64 (K, 2) of (x, y) pixels, "entry": "Images[i].ROIs[j]",
    "source": xml_path}``; ``entry`` and ``source`` let :func:`inbreast_cluster_boxes` name a bad ROI. ``Point_px``
    strings are ``"(x, y)"`` (a third coordinate, as in ``Point_mm``, is ignored).

    Args:
        xml_path: the ``<id>.xml`` file of one image.

    Returns:
        The ROIs of every ``Images`` entry, in file order.

    Raises:
        DatasetLayoutError: the file is missing or is not a plist; no ``Images`` array; an ROI without ``Name`` or
            ``Point_px``; a point that is not ``"(x, y)"``; ``NumberOfPoints`` differing from the number of points —
            naming the file and ``Images[i].ROIs[j]``.
    """
    path = Path(xml_path)
    if not path.is_file():
        raise DatasetLayoutError(path, "annotation file does not exist", INBREAST_XML_LAYOUT)
    try:
        with open(path, "rb") as f:
            data = plistlib.load(f, fmt=plistlib.FMT_XML)
    except Exception as e:  # expat, plistlib and OS errors all mean "not a readable plist"
        raise DatasetLayoutError(
            path, f"cannot be read as plist XML ({type(e).__name__}: {e})", INBREAST_XML_LAYOUT
        ) from e
    if not isinstance(data, dict) or not isinstance(data.get("Images"), list):
        raise DatasetLayoutError(path, "has no 'Images' array in its top-level dict", INBREAST_XML_LAYOUT)
    rois: list[dict[str, object]] = []
    for i, image in enumerate(data["Images"]):
        roi_list = image.get("ROIs", []) if isinstance(image, dict) else None
        if not isinstance(roi_list, list):
            raise DatasetLayoutError(path, f"Images[{i}]: 'ROIs' is not an array", INBREAST_XML_LAYOUT)
        for j, roi in enumerate(roi_list):
            entry = f"Images[{i}].ROIs[{j}]"
            if not isinstance(roi, dict):
                raise DatasetLayoutError(path, f"{entry} is not a dict", INBREAST_XML_LAYOUT)
            missing = [k for k in ("Name", "Point_px") if k not in roi]
            if missing:
                raise DatasetLayoutError(path, f"{entry}: missing key(s) {missing}", INBREAST_XML_LAYOUT)
            if not isinstance(roi["Point_px"], list) or not roi["Point_px"]:
                raise DatasetLayoutError(path, f"{entry} ({roi['Name']}): 'Point_px' is not a non-empty array")
            points = []
            for k, text in enumerate(roi["Point_px"]):
                point = _point(text)
                if point is None:
                    raise DatasetLayoutError(path, f"{entry} ({roi['Name']}): Point_px[{k}] {text!r} is not '(x, y)'")
                points.append(point)
            count = roi.get("NumberOfPoints")
            if count is not None and count != len(points):
                raise DatasetLayoutError(
                    path, f"{entry} ({roi['Name']}): NumberOfPoints is {count} but Point_px has {len(points)} points"
                )
            points_array = np.asarray(points, np.float64)
            rois.append({"name": str(roi["Name"]), "points": points_array, "entry": entry, "source": str(path)})
    return rois


def _check_points(points: np.ndarray, image_shape: Sequence[int], source: str, entry: str, tol: float = 0.5) -> None:
    height, width = float(image_shape[0]), float(image_shape[1])
    x, y = points[:, 0], points[:, 1]
    outside = (x < -tol) | (x > width + tol) | (y < -tol) | (y > height + tol)
    if outside.any():
        px, py = points[np.flatnonzero(outside)[0]]
        raise DatasetLayoutError(
            source, f"{entry}: point ({px:g}, {py:g}) lies outside the image (width {width:g}, height {height:g})"
        )


def _groups(centres: np.ndarray, distance: float) -> list[np.ndarray]:
    """Single-linkage groups: connected components of the graph linking centres at most ``distance`` apart."""
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial.distance import cdist

    if len(centres) == 0:
        return []
    _, labels = connected_components(cdist(centres, centres) <= distance, directed=False)
    return [np.flatnonzero(labels == g) for g in range(labels.max() + 1)]


def inbreast_cluster_boxes(
    rois: Sequence[Mapping[str, object]],
    distance: float = 100.0,
    min_calcifications: int = 3,
    margin: float = 7.0,
    image_shape: Sequence[int] | None = None,
    calcification_names: Sequence[str] = ("calcification", "calcifications"),
    cluster_names: Sequence[str] = ("cluster",),
) -> np.ndarray:
    """Calcification-cluster boxes of one INbreast image from its ROIs (:func:`read_inbreast_xml`).

    INbreast annotates individual calcifications (mostly one-point ROIs) and, for some images, the cluster
    outline; the detection task needs one box per cluster. The rule (names compared case-insensitively):

    1. each ROI named ``Cluster`` gives the bounding box of its points, unpadded (the radiologist drew it; a
       degenerate one-point or straight-line outline is padded by ``margin`` to stay a valid box);
    2. ``Calcification`` ROIs whose centre (mean of its points) lies inside a ``Cluster`` box belong to that
       cluster and are not grouped again, so a cluster annotated both ways gives one box, not two;
    3. the remaining calcifications are grouped by single linkage: two are linked when their centres are at most
       ``distance`` pixels apart, and a group is a connected set of links;
    4. each group of at least ``min_calcifications`` becomes the bounding box of all its points padded by
       ``margin`` on each side; smaller groups (isolated calcifications) give no box;
    5. with ``image_shape``, boxes are clipped to the image (the margin may cross the border).

    Why these defaults: the clinical (BI-RADS) definition of a cluster is at least 3 calcifications within about
    1 cm²; at INbreast's 0.07 mm/pixel, 1 cm² is a square of ~143 px side or a disc of ~80 px radius (5.6 mm), so a
    100 px (7 mm) link joins calcifications that can share a 1 cm² area and leaves more distant ones apart. Single
    linkage may chain a longer linear or segmental distribution into one box, which radiologists also report as one
    finding. The 7 px (0.5 mm) margin is about the radius of a typical microcalcification (≤ 1 mm), because
    one-point ROIs mark centres and the box must cover the specks themselves.

    Args:
        rois: ROIs of one image, as returned by :func:`read_inbreast_xml` (``name`` and ``points`` needed;
            ``entry`` and ``source`` are used in errors).
        distance: single-linkage distance between calcification centres, pixels.
        min_calcifications: smallest group that counts as a cluster.
        margin: padding of grouped boxes (and of degenerate ``Cluster`` outlines), pixels.
        image_shape: ``(height, width)``; when given, every calcification and cluster point must lie in the image
            (0.5 px tolerance) and the boxes are clipped to it.
        calcification_names: ROI names of individual calcifications (lower case).
        cluster_names: ROI names of drawn cluster outlines (lower case).

    Returns:
        float32 ``(N, 4)`` xyxy boxes: drawn clusters first (file order), then grouped ones (by first member).

    Raises:
        DatasetLayoutError: a calcification or cluster ROI without finite points, or one with a point outside the
            image (with ``image_shape``), naming the XML file and entry.
    """
    calc_names = {n.lower() for n in calcification_names}
    clus_names = {n.lower() for n in cluster_names}
    source = next((str(r["source"]) for r in rois if "source" in r), "INbreast ROIs")
    clusters, calcs = [], []
    for k, roi in enumerate(rois):
        name = str(roi["name"]).strip().lower()
        if name not in clus_names | calc_names:
            continue  # masses, distortions, asymmetries, ...
        points = np.asarray(roi["points"], np.float64).reshape(-1, 2)
        entry = f"{roi.get('entry', f'ROI {k}')} ({roi['name']})"
        if not len(points) or not np.isfinite(points).all():
            raise DatasetLayoutError(source, f"{entry}: no points or a non-finite point")
        if image_shape is not None:
            _check_points(points, image_shape, source, entry)
        (clusters if name in clus_names else calcs).append(points)

    boxes = []
    for points in clusters:
        x1, y1 = points.min(axis=0)
        x2, y2 = points.max(axis=0)
        pad = margin if (x2 <= x1 or y2 <= y1) else 0.0
        boxes.append([x1 - pad, y1 - pad, x2 + pad, y2 + pad])

    centres = np.asarray([p.mean(axis=0) for p in calcs]).reshape(-1, 2)
    inside = np.zeros(len(calcs), bool)
    for x1, y1, x2, y2 in boxes:
        inside |= (centres[:, 0] >= x1) & (centres[:, 0] <= x2) & (centres[:, 1] >= y1) & (centres[:, 1] <= y2)
    free = np.flatnonzero(~inside)
    for group in _groups(centres[free], distance):
        if len(group) < min_calcifications:
            continue
        points = np.concatenate([calcs[free[g]] for g in group])
        x1, y1 = points.min(axis=0)
        x2, y2 = points.max(axis=0)
        boxes.append([x1 - margin, y1 - margin, x2 + margin, y2 + margin])

    array = np.asarray(boxes, np.float64).reshape(-1, 4)
    if image_shape is not None and len(array):
        array[:, 0::2] = np.clip(array[:, 0::2], 0.0, float(image_shape[1]))
        array[:, 1::2] = np.clip(array[:, 1::2], 0.0, float(image_shape[0]))
    return array.astype(np.float32)
