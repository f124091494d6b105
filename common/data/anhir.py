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
challenge). Columns are read by name, so the leading unnamed index column is optional. Datalist items: ``image``
(source/moving), ``fixed`` (target), ``moving_landmarks``, ``fixed_landmarks`` (absent when the file is not
available), ``status``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..image_io import read_image_array
from .errors import DatasetError, DatasetLayoutError, ImageFileError

__all__ = ["ANHIR_LAYOUT", "read_landmarks", "write_landmarks", "anhir_datalist", "check_anhir_datalist"]

ANHIR_LAYOUT = """<dataset_dir>/
  dataset.csv          # columns (by name; ANHIR's leading index column is optional): Source image,
                       #   Source landmarks, Target image, Target landmarks, status
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

    Columns are read by name, so ANHIR's leading unnamed index column (written by pandas) is optional: a CSV without
    it gives the same pairs. Every row must hold as many values as the header has columns; a row that does not (a
    header that lost its empty index cell while the rows kept their index, say) would shift every value into the
    wrong column, and is rejected.

    Args:
        dataset_dir: dataset folder holding ``csv_name``.
        status: keep rows whose status is this (or one of these); ``None`` keeps all.
        csv_name: the dataset CSV.
        require_landmarks: every kept pair is to be scored, so both its landmark files must exist (evaluation,
            validation).

    Raises:
        DatasetLayoutError: naming the CSV when it is missing or empty, lacks a needed column (``Source image`` and
            ``Target image``; ``status`` when filtering by status; both landmark columns with
            ``require_landmarks``), has a row of another length than its header, or leaves no pair. When no pair of
            the wanted status is left, the message lists the statuses the CSV has and, with ``require_landmarks``,
            the ``--status`` to pass for pairs that can be scored.
        ImageFileError: with ``require_landmarks``, naming a kept pair's landmark file that does not exist while
            other pairs of that status have theirs (an empty landmark cell: DatasetLayoutError naming the CSV and
            line): a listed pair that cannot be scored is an error, not a smaller evaluation.
    """
    root = Path(dataset_dir)
    table = root / csv_name
    if not table.is_file():
        raise DatasetLayoutError(table, "the ANHIR dataset CSV is missing", ANHIR_LAYOUT)
    try:
        with table.open(newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetLayoutError(table, f"cannot read the ANHIR dataset CSV ({exc})", ANHIR_LAYOUT) from exc
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DatasetLayoutError(table, "the ANHIR dataset CSV is empty (no header row)", ANHIR_LAYOUT)
    header = [h.strip() for h in rows[0]]
    wanted = None if status is None else ({status} if isinstance(status, str) else set(status))
    needed = ["Source image", "Target image"] + (["status"] if wanted is not None else [])
    if require_landmarks:
        needed += ["Source landmarks", "Target landmarks"]
    missing = [c for c in _COLUMNS + ("status",) if c in needed and c not in header]
    if missing:
        why = " (needed to score the pairs)" if require_landmarks and set(missing) & set(_COLUMNS[1::2]) else ""
        raise DatasetLayoutError(table, f"lacks column(s) {missing}{why}; header {header}", ANHIR_LAYOUT)

    statuses: dict[str, int] = {}  # every status in the CSV -> number of pairs
    scorable: dict[str, int] = {}  # status -> number of pairs with both landmark files
    kept: list[tuple[int, dict[str, str], list[tuple[str, Path | None]]]] = []
    for line, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise DatasetLayoutError(
                table,
                f"line {line} has {len(cells)} values for the {len(header)} columns of the header {header} (a "
                "leading index column without its empty header cell, or the reverse?); every value would be read "
                "in the wrong column",
                ANHIR_LAYOUT,
            )
        row = {k: v.strip() for k, v in zip(header, cells, strict=True)}
        row_status = row.get("status", "")
        item = {"image": str(root / row["Source image"]), "fixed": str(root / row["Target image"]),
                "status": row_status}  # fmt: skip
        unavailable = []
        for column, key in (("Source landmarks", "moving_landmarks"), ("Target landmarks", "fixed_landmarks")):
            value = row.get(column, "")
            if value and (root / value).is_file():
                item[key] = str(root / value)
            else:
                unavailable.append((column, root / value if value else None))
        statuses[row_status] = statuses.get(row_status, 0) + 1
        if not unavailable:
            scorable[row_status] = scorable.get(row_status, 0) + 1
        if wanted is None or row_status in wanted:
            kept.append((line, item, unavailable))

    which = f"with status {sorted(wanted)}" if wanted is not None else "listed"
    alternatives = sorted(s for s in scorable if wanted is not None and s not in wanted)
    advice = ""
    if alternatives:
        advice = (
            f"; the pairs with both landmark files have status {alternatives}: pass `--status {alternatives[0]}` "
            "to score those"
        )
    if not kept:
        listed = ", ".join(f"{s or '(empty)'}: {n}" for s, n in sorted(statuses.items())) or "none"
        problem = f"no image pair {which} is listed (pairs per status: {listed})"
        raise DatasetLayoutError(table, problem + (advice if require_landmarks else ""), ANHIR_LAYOUT)
    if not require_landmarks:
        return [item for _, item, _ in kept]

    unscorable = [(line, unavailable) for line, _, unavailable in kept if unavailable]
    if not unscorable:
        return [item for _, item, _ in kept]
    line, unavailable = unscorable[0]
    column, path = unavailable[0]
    first = f"line {line}, column '{column}': " + (f"{path} does not exist" if path else "empty cell")
    if len(unscorable) == len(kept):
        raise DatasetLayoutError(
            table,
            f"none of the {len(kept)} pair(s) {which} can be scored: none has both landmark files (first: {first})"
            f"{advice}",
            ANHIR_LAYOUT,
        )
    count = f"{len(unscorable)} of the {len(kept)} pair(s) {which} lack a landmark file"
    if path is None:
        raise DatasetLayoutError(
            table, f"line {line}: the '{column}' cell is empty, so its pair cannot be scored ({count})"
        )
    raise ImageFileError(
        path,
        f"landmark file listed in {table} (line {line}, column '{column}') does not exist, so its pair cannot be "
        f"scored ({count}); restore the file or remove the row",
    )


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
