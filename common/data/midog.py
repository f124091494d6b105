"""MIDOG 2021 in its own layout: TIFF images ``001.tiff`` ... and ``MIDOG.json`` (COCO style), read into detection
datalists of a source scanner (labelled) and a target scanner (used without labels), and TIFF region reading for
whole-slide inference with bounded memory.

The challenge maps image ids to scanners by range (:data:`MIDOG_SCANNERS`). Split rule (docs/README.md of the
bundle): the source scanner's images, by id, are split into training and validation, the last
``val_fraction`` of them validating (model selection and the score threshold); the target scanner's images are
all used, without their labels, for the adaptation (DAH's target batches and FFT's style pool), and all are scored
with their labels as the test split: the paper's unsupervised setting (its Table VI, "Supervised x").

Labels: category ``mitotic figure`` is the one class (label 0); ``hard negative`` look-alikes are kept apart under
``hard_negative_box`` and are never counted (MIDOG's evaluation scores mitotic figures only).
"""  # noqa: D205

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .boxes import read_coco_boxes
from .errors import DatasetLayoutError, ImageFileError
from .validation import items_to_check

__all__ = [
    "MIDOG_CATEGORIES",
    "MIDOG_LAYOUT",
    "MIDOG_SCANNERS",
    "TiffRegionReader",
    "check_midog_datalist",
    "check_tiff",
    "load_rgb_tiff",
    "midog_datalist",
    "midog_scanner",
    "read_tiff_region",
]

MIDOG_SCANNERS: dict[str, tuple[int, int]] = {
    "hamamatsu_xr": (1, 50),
    "hamamatsu_s360": (51, 100),
    "aperio_cs2": (101, 150),
    "leica_gt450": (151, 200),
}
"""MIDOG 2021 training set: image id range (inclusive) of each scanner (the Leica GT450 images carry no labels)."""

MIDOG_CATEGORIES: tuple[str, ...] = ("mitotic figure", "hard negative")
"""The category names MIDOG.json uses; any other is an error."""

MIDOG_LAYOUT = """\
<dataset_dir>/
├── MIDOG.json        COCO style: images [{id, file_name: "001.tiff", width, height}],
│                     annotations [{image_id, bbox: [x, y, w, h], category_id}],
│                     categories [{id: 1, name: "mitotic figure"}, {id: 2, name: "hard negative"}]
├── 001.tiff          RGB TIFF, 8 bit (ids 001-050 Hamamatsu XR, 051-100 Hamamatsu S360,
├── 002.tiff                        101-150 Aperio CS2, 151-200 Leica GT450)
└── ...
"""


def midog_scanner(image_id: int) -> str:
    """The scanner of a MIDOG image id.

    Raises:
        ValueError: an id outside every range of :data:`MIDOG_SCANNERS`.
    """
    for name, (low, high) in MIDOG_SCANNERS.items():
        if low <= int(image_id) <= high:
            return name
    raise ValueError(f"image id {image_id} is in no MIDOG scanner range {MIDOG_SCANNERS}")


def _categories(path: Path, data: Mapping[str, Any]) -> dict[int, int]:
    categories = data.get("categories")
    if not isinstance(categories, list) or not categories:
        raise DatasetLayoutError(path, "has no 'categories' list", MIDOG_LAYOUT)
    mapping = {}
    for k, c in enumerate(categories):
        name = str(c.get("name", "")).strip().lower() if isinstance(c, dict) else ""
        if name not in MIDOG_CATEGORIES or "id" not in c:
            raise DatasetLayoutError(
                path, f"categories[{k}]: unknown category {c!r}; expected one of {list(MIDOG_CATEGORIES)}", MIDOG_LAYOUT
            )
        mapping[int(c["id"])] = MIDOG_CATEGORIES.index(name)
    return mapping


def midog_datalist(
    dataset_dir: str | Path,
    domain: str = "source",
    split: str = "train",
    source_scanner: str = "hamamatsu_xr",
    target_scanner: str = "aperio_cs2",
    val_fraction: float = 0.2,
    labels: bool = True,
) -> list[dict[str, Any]]:
    """Items of one domain and split of a MIDOG-layout folder (see the module docstring for the split rule).

    Args:
        dataset_dir: folder holding ``MIDOG.json`` and the TIFFs.
        domain: ``"source"`` or ``"target"``.
        split: ``"train"``, ``"val"`` or ``"all"`` for the source; the target has one split, all its images
            (``"train"``, ``"test"`` or ``"all"``).
        source_scanner: a key of :data:`MIDOG_SCANNERS`.
        target_scanner: a key of :data:`MIDOG_SCANNERS`, not the source's.
        val_fraction: share of the source images (the highest ids) that validate.
        labels: keep the boxes (False: ``{"image", "scanner"}`` only, the unlabelled target of the adaptation).

    Returns:
        Items ``{"image", "box" (N, 4), "label" (N,) zeros, "hard_negative_box" (M, 4), "scanner", "image_id"}``.

    Raises:
        DatasetLayoutError: a missing folder or JSON, an unknown category, a listed image without its file, a box
            outside its image (naming ``MIDOG.json``), an unknown scanner, split or domain, or no image of the
            scanner.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetLayoutError(root, "dataset folder does not exist", MIDOG_LAYOUT)
    path = root / "MIDOG.json"
    if not path.is_file():
        raise DatasetLayoutError(path, "annotation file does not exist", MIDOG_LAYOUT)
    for name, scanner in (("source_scanner", source_scanner), ("target_scanner", target_scanner)):
        if scanner not in MIDOG_SCANNERS:
            raise DatasetLayoutError(path, f"unknown {name} '{scanner}'; choose one of {list(MIDOG_SCANNERS)}")
    if source_scanner == target_scanner:
        raise DatasetLayoutError(path, f"source and target scanner are both '{source_scanner}'")
    if domain not in ("source", "target"):
        raise ValueError(f"domain must be 'source' or 'target', got '{domain}'")
    allowed = ("train", "val", "all") if domain == "source" else ("train", "test", "all")
    if split not in allowed:
        raise ValueError(f"split of the {domain} domain must be one of {list(allowed)}, got '{split}'")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DatasetLayoutError(path, f"cannot be read as JSON ({e})", MIDOG_LAYOUT) from e
    if not isinstance(data, dict):
        raise DatasetLayoutError(path, "is not a JSON object", MIDOG_LAYOUT)
    category_map = _categories(path, data)
    items = read_coco_boxes(path, root, category_map)
    ids = [image.get("id") for image in data.get("images", [])]
    scanner = source_scanner if domain == "source" else target_scanner
    low, high = MIDOG_SCANNERS[scanner]
    chosen = []
    for item, image_id in zip(items, ids):
        try:
            number = int(image_id)
        except (TypeError, ValueError) as e:
            raise DatasetLayoutError(path, f"image id {image_id!r} is not an integer") from e
        if low <= number <= high:
            chosen.append((number, item))
    if not chosen:
        raise DatasetLayoutError(path, f"no image of scanner '{scanner}' (ids {low}-{high})", MIDOG_LAYOUT)
    chosen.sort(key=lambda pair: pair[0])
    if domain == "source" and split != "all":
        n_val = max(1, int(np.ceil(val_fraction * len(chosen)))) if len(chosen) > 1 else 0
        chosen = chosen[: len(chosen) - n_val] if split == "train" else chosen[len(chosen) - n_val :]
    out = []
    for number, item in chosen:
        entry: dict[str, Any] = {"image": item["image"], "scanner": scanner, "image_id": number}
        if labels:
            box, label = np.asarray(item["box"]), np.asarray(item["label"])
            entry["box"] = box[label == 0].astype(np.float32).reshape(-1, 4)
            entry["label"] = np.zeros(int((label == 0).sum()), np.int64)
            entry["hard_negative_box"] = box[label == 1].astype(np.float32).reshape(-1, 4)
        out.append(entry)
    return out


def _tiff_page(path: Path) -> Any:
    import tifffile

    if not path.is_file():
        raise ImageFileError(path, "file does not exist")
    try:
        tif = tifffile.TiffFile(str(path))
    except Exception as e:
        raise ImageFileError(path, f"cannot read image ({type(e).__name__}: {e})") from e
    return tif


def check_tiff(path: str | Path) -> tuple[int, int]:
    """Decode an RGB TIFF segment by segment (strips or tiles: memory of one segment) and return ``(height, width)``.

    Raises:
        ImageFileError: a missing file, a file that cannot be decoded (truncated, not a TIFF), or not 8-bit RGB
            (naming the file and the channel count).
    """
    path = Path(path)
    tif = _tiff_page(path)
    with tif:
        try:
            page = tif.pages.first
            shape = page.shape
            samples = int(page.samplesperpixel)
            if samples not in (3, 4) or len(shape) != 3:
                raise ImageFileError(path, f"has {samples} channel(s), expected 3 (RGB H&E)")
            expected = 1
            for n in page.shape:
                expected *= int(n)
            decoded = 0
            fh = tif.filehandle
            for offset, count in zip(page.dataoffsets, page.databytecounts):
                if offset + count > fh.size:
                    raise ValueError(f"segment at byte {offset} ends past the end of the file ({fh.size} bytes)")
            for segment, _, _ in page.segments():
                if segment is None:
                    raise ValueError("a segment could not be decoded")
                decoded += int(np.asarray(segment).size)
            if decoded < expected:
                raise ValueError(f"decoded {decoded} of {expected} values")
            return int(shape[0]), int(shape[1])
        except ImageFileError:
            raise
        except Exception as e:
            raise ImageFileError(path, f"cannot read image ({type(e).__name__}: {e})") from e


def check_midog_datalist(
    datalist: Sequence[Mapping[str, Any]], image_key: str = "image", progress: bool = True
) -> Sequence[Mapping[str, Any]]:
    """Decode every image of a datalist (:func:`check_tiff`) before anything is written; return it unchanged.

    Items whose image is not a path (arrays from MONAI Label) are skipped.

    Raises:
        DatasetError: an empty datalist.
        ImageFileError: the first bad file, naming it.
    """
    for item in items_to_check(datalist, "images", "checking TIFF images", progress):
        image = item.get(image_key)
        if isinstance(image, (str, Path)):
            check_tiff(image)
    return datalist


def load_rgb_tiff(path: str | Path) -> Any:
    """An RGB TIFF as a float32 ``MetaTensor`` ``(3, X, Y)`` in 0..255 (x, the column, first: MONAI's detection
    layout), its meta naming the file.

    Raises:
        ImageFileError: a file that cannot be decoded or is not RGB.
    """  # noqa: D205
    import tifffile
    from monai.data import MetaTensor

    path = Path(path)
    if not path.is_file():
        raise ImageFileError(path, "file does not exist")
    try:
        array = tifffile.imread(str(path))
    except Exception as e:
        raise ImageFileError(path, f"cannot read image ({type(e).__name__}: {e})") from e
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        channels = 1 if array.ndim == 2 else array.shape[-1]
        raise ImageFileError(path, f"has {channels} channel(s), expected 3 (RGB H&E)")
    image = np.ascontiguousarray(array[..., :3].transpose(2, 1, 0)).astype(np.float32)
    meta = {"filename_or_obj": str(path), "spatial_shape": np.asarray(image.shape[1:])}
    return MetaTensor(image, meta=meta)


def read_tiff_region(page: Any, path: str | Path, y: int, x: int, height: int, width: int) -> np.ndarray:
    """``(height, width, 3)`` uint8 pixels of rows ``y..y+height`` and columns ``x..x+width`` of a TIFF page.

    Only the page's segments (tiles or strips) that overlap the region are read and decoded, so the memory of a read
    is that of the region plus one row of segments, whatever the image's size. Shared by :class:`TiffRegionReader`
    and :class:`~common.data.RegionTiffWSIReader`.

    Args:
        page: an RGB(A) ``tifffile.TiffPage`` (chunky, 8-bit).
        path: the file, for the error message.
        y: first row.
        x: first column.
        height: rows (cut at the image).
        width: columns (cut at the image).

    Returns:
        The region's RGB pixels.

    Raises:
        ImageFileError: a segment that cannot be decoded.
    """
    rows, cols = int(page.shape[0]), int(page.shape[1])
    seg = (int(page.tilelength), int(page.tilewidth)) if page.is_tiled else (int(page.rowsperstrip), cols)
    seg = (min(seg[0], rows), seg[1])  # rowsperstrip may exceed the image (a single strip)
    grid_w = -(-cols // seg[1])
    y2, x2 = min(y + height, rows), min(x + width, cols)
    out = np.zeros((max(y2 - y, 0), max(x2 - x, 0), 3), np.uint8)
    sh, sw = seg
    fh = page.parent.filehandle
    for r in range(y // sh, -(-y2 // sh)):
        for c in range(x // sw, -(-x2 // sw)):
            index = r * grid_w + c
            offset, count = page.dataoffsets[index], page.databytecounts[index]
            try:
                fh.seek(offset)
                data = fh.read(count)
                segment, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
            except Exception as e:
                raise ImageFileError(path, f"cannot read image segment {index} ({e})") from e
            segment = np.asarray(segment).reshape(segment.shape[-3:])[..., :3]
            sy, sx = r * sh, c * sw
            ys, xs = max(y, sy), max(x, sx)
            ye, xe = min(y2, sy + segment.shape[0]), min(x2, sx + segment.shape[1])
            out[ys - y : ye - y, xs - x : xe - x] = segment[ys - sy : ye - sy, xs - sx : xe - sx]
    return out


class TiffRegionReader:
    """Reads regions of a (tiled or stripped) RGB TIFF without decoding the whole image.

    Only the TIFF segments (tiles or strips) that overlap the region are read and decoded, so the memory of a read
    is that of the region plus one row of segments, whatever the image's size.

    Args:
        path: the file.

    Attributes:
        shape: ``(height, width)``.

    Raises:
        ImageFileError: a file that cannot be opened, is not RGB, or is compressed in a way tifffile cannot decode
            segment-wise.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._tif = _tiff_page(self.path)
        page = self._tif.pages.first
        if len(page.shape) != 3 or int(page.samplesperpixel) not in (3, 4):
            self._tif.close()
            raise ImageFileError(self.path, f"has {page.samplesperpixel} channel(s), expected 3 (RGB H&E)")
        self._page = page
        self.shape = (int(page.shape[0]), int(page.shape[1]))

    def close(self) -> None:
        """Close the file."""
        self._tif.close()

    def __enter__(self) -> TiffRegionReader:  # noqa: D105
        return self

    def __exit__(self, *args: object) -> None:  # noqa: D105
        self.close()

    def read(self, y: int, x: int, height: int, width: int) -> np.ndarray:
        """``(height, width, 3)`` uint8 pixels of rows ``y..y+height`` and columns ``x..x+width`` (cut at the image).

        Raises:
            ImageFileError: a segment that cannot be decoded.
        """
        return read_tiff_region(self._page, self.path, y, x, height, width)
