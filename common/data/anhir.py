"""ANHIR (Automatic Non-rigid Histological Image Registration challenge, ISBI 2019) dataset layout.

The dataset CSV lists one image pair per row; paths are relative to the dataset folder::

    <dataset_dir>/
      dataset.csv            # ,Source image,Source landmarks,Target image,Target landmarks,status,...
      lung-lesion_1/
        scale-25pc/
          29-041-Izd2-w35-Cc10-5-les1.jpg
          29-041-Izd2-w35-He-les1.jpg
        ...
      lung-lesion_1/scale-25pc/29-041-Izd2-w35-Cc10-5-les1.csv   # landmarks: ,X,Y (pixels, x = column)
      ...

``status`` is ``training`` (both landmark files public) or ``evaluation`` (target landmarks withheld on the real
challenge). Datalist items: ``image`` (source/moving), ``fixed`` (target), ``moving_landmarks``,
``fixed_landmarks`` (absent when the file is not available), ``status``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import DatasetError, DatasetLayoutError, ImageFileError
from .validation import read_image_array

__all__ = ["ANHIR_LAYOUT", "read_landmarks", "write_landmarks", "anhir_datalist", "check_anhir_datalist"]

ANHIR_LAYOUT = """<dataset_dir>/
  dataset.csv          # columns: Source image, Source landmarks, Target image, Target landmarks, status
  <tissue>_<n>/scale-<p>pc/<stain>.jpg|png|tif   # RGB images
  <tissue>_<n>/scale-<p>pc/<stain>.csv           # landmarks: index, X, Y (pixels)"""

_COLUMNS = ("Source image", "Source landmarks", "Target image", "Target landmarks")


def read_landmarks(path: str | Path) -> np.ndarray:
    """Read an ANHIR landmark CSV (columns ``X`` and ``Y``, an optional unnamed index column) -> ``(N, 2)`` float.

    Raises:
        ImageFileError: naming the file when it is unreadable, lacks the X/Y columns, holds non-numeric or
            non-finite values, or no landmark.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(path, "landmark file does not exist")
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise ImageFileError(path, f"cannot read landmark file ({exc})") from exc
    if not rows:
        raise ImageFileError(path, "landmark file is empty")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in ("X", "Y") if c not in header]
    if missing:
        raise ImageFileError(path, f"landmark file lacks column(s) {missing} (header {header})")
    ix, iy = header.index("X"), header.index("Y")
    points = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            x, y = float(row[ix]), float(row[iy])
        except (ValueError, IndexError) as exc:
            raise ImageFileError(path, f"line {line}: non-numeric or missing X/Y value in {row}") from exc
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ImageFileError(path, f"line {line}: non-finite X/Y value in {row}")
        points.append((x, y))
    if not points:
        raise ImageFileError(path, "landmark file holds no landmark")
    return np.asarray(points, dtype=np.float64)


def write_landmarks(path: str | Path, points: np.ndarray) -> Path:
    """Write ``(N, 2)`` points as an ANHIR landmark CSV (``,X,Y`` header, row index first)."""
    path = Path(path)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["", "X", "Y"])
        for i, (x, y) in enumerate(pts):
            writer.writerow([i, f"{x:.4f}", f"{y:.4f}"])
    return path


def anhir_datalist(
    dataset_dir: str | Path, status: str | Sequence[str] | None = None, csv_name: str = "dataset.csv",
    require_landmarks: bool = False,
) -> list[dict[str, str]]:  # fmt: skip
    """Pairs of the ANHIR dataset CSV, optionally filtered by ``status``.

    Args:
        dataset_dir: dataset folder holding ``csv_name``.
        status: keep rows whose status is this (or one of these); ``None`` keeps all.
        csv_name: the dataset CSV.
        require_landmarks: drop pairs whose target landmark file is not available (evaluation).

    Raises:
        DatasetLayoutError: the CSV is missing, lacks columns, or no pair is left.
    """
    root = Path(dataset_dir)
    table = root / csv_name
    if not table.is_file():
        raise DatasetLayoutError(table, "the ANHIR dataset CSV is missing", ANHIR_LAYOUT)
    with table.open(newline="") as f:
        rows = list(csv.DictReader(f))
    header = [h.strip() for h in (rows[0].keys() if rows else [])]
    missing = [c for c in _COLUMNS[::2] if c not in header]
    if missing:
        raise DatasetLayoutError(table, f"lacks column(s) {missing}", ANHIR_LAYOUT)
    wanted = None if status is None else ({status} if isinstance(status, str) else set(status))
    items = []
    for row in rows:
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if wanted is not None and row.get("status", "") not in wanted:
            continue
        item = {"image": str(root / row["Source image"]), "fixed": str(root / row["Target image"]),
                "status": row.get("status", "")}  # fmt: skip
        for column, key in (("Source landmarks", "moving_landmarks"), ("Target landmarks", "fixed_landmarks")):
            value = row.get(column, "")
            if value and (root / value).is_file():
                item[key] = str(root / value)
        if require_landmarks and not ("moving_landmarks" in item and "fixed_landmarks" in item):
            continue
        items.append(item)
    if not items:
        raise DatasetLayoutError(table, f"no image pair with status {sorted(wanted or [])} is listed", ANHIR_LAYOUT)
    return items


def _frames(path: Path) -> int:
    """Number of pages of a (multi-page) TIFF; 1 for other files."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return 1
    from PIL import Image

    with Image.open(path) as img:
        return int(getattr(img, "n_frames", 1))


def check_anhir_datalist(
    datalist: Sequence[Mapping[str, object]], min_tissue_fraction: float = 0.005
) -> Sequence[Mapping[str, object]]:
    """Check every pair before a workflow writes anything; return the datalist unchanged.

    Each image is decoded and must be a 2D RGB image (3 channels, as ANHIR's stained slides) with tissue (some
    pixels clearly darker than the glass background); source and target must be of the same dimensionality;
    landmark files must have numeric X and Y columns.

    Raises:
        DatasetError: for an empty datalist.
        ImageFileError: naming the first bad file and the problem.
    """
    if len(datalist) == 0:
        raise DatasetError("the datalist is empty: the dataset folder holds no usable image pair")
    for item in datalist:
        arrays = {}
        for key in ("image", "fixed"):
            path = item.get(key)
            if not isinstance(path, (str, Path)):
                continue
            array = read_image_array(path)
            frames = _frames(Path(path))
            if frames > 1 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] > 4):
                shape = (frames, *array.shape) if frames > 1 else array.shape
                raise ImageFileError(
                    path,
                    f"has dimensionality 3D (shape {shape}), expected a 2D RGB slide like the other image of its pair",
                )
            channels = 1 if array.ndim == 2 else array.shape[-1]
            if channels not in (3, 4):
                raise ImageFileError(path, f"has {channels} channel(s), expected 3 (RGB stained slide)")
            arrays[key] = (path, array)
            grey = array[..., :3].astype(np.float32).mean(-1)
            peak = 255.0 if grey.max() > 1.0 else 1.0
            tissue = float((grey < 0.85 * peak).mean())
            if tissue < min_tissue_fraction or float(grey.std()) < 1e-3 * peak:
                raise ImageFileError(path, f"is blank: no tissue found ({tissue:.1%} of pixels darker than glass)")
        if len(arrays) == 2 and arrays["image"][1].ndim != arrays["fixed"][1].ndim:
            raise ImageFileError(
                arrays["fixed"][0],
                f"has dimensionality {arrays['fixed'][1].shape} different from its source {arrays['image'][0]} "
                f"{arrays['image'][1].shape}",
            )
        for key in ("moving_landmarks", "fixed_landmarks"):
            if isinstance(item.get(key), (str, Path)):
                read_landmarks(item[key])
    return datalist
