"""OASIS-1 as preprocessed by neurite (Hoopes et al., HyperMorph), the layout FNOReg trains on, and its pairs.

Layout (``neurite-oasis.v1.0`` and the 2D-only ``neurite-oasis.2d.v1.0`` archives)::

    <dataset_dir>/
      subjects.txt                     subject folders, one per line (the order defines the split)
      OASIS_OAS1_0001_MR1/
        slice_norm.nii.gz              2D: 160 x 192 (x 1) normalised T1 slice, intensities in [0, 1]
        slice_seg4.nii.gz              2D: 4-label segmentation
        slice_seg24.nii.gz             2D: 24-label segmentation (used for Dice)
        aligned_norm.nii.gz            3D: 160 x 192 x 224 affinely aligned normalised T1
        aligned_seg4.nii.gz            3D: 4-label segmentation
        aligned_seg35.nii.gz           3D: 35-label segmentation (used for Dice and the 3D Dice loss)
      OASIS_OAS1_0002_MR1/
        ...

Pairs as the authors' code forms them (subjects in ``subjects.txt`` order, moving -> fixed):

- 2D: subjects 0-200 train with every ordered pair (201 x 200 = 40,200), 201-212 validation and 213-413 test with
  consecutive pairs in both directions (i -> i+1 and i+1 -> i).
- 3D: subjects 0-383 train with consecutive pairs in both directions (766), 384-393 validation and 394-413 test
  with forward consecutive pairs (9 and 19).

Smaller collections (the generated sample) keep the same proportions, with at least 2 subjects per held-out split.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import DatasetError, DatasetLayoutError, ImageFileError
from .validation import check_image

__all__ = [
    "OASIS_LAYOUT",
    "OASIS_FILES",
    "OASIS_SPLITS",
    "oasis_subjects",
    "oasis_split",
    "oasis_pairs",
    "oasis_pair_datalist",
    "check_registration_datalist",
]

OASIS_LAYOUT = """\
<dataset_dir>/
  subjects.txt                 (optional) subject folders in split order, one per line
  OASIS_OAS1_0001_MR1/
    slice_norm.nii.gz          2D image      | aligned_norm.nii.gz    3D image
    slice_seg4.nii.gz          2D 4 labels   | aligned_seg4.nii.gz    3D 4 labels
    slice_seg24.nii.gz         2D 24 labels  | aligned_seg35.nii.gz   3D 35 labels
  OASIS_OAS1_0002_MR1/
    ...
"""

#: (image, label files by label set) per dimensionality
OASIS_FILES: dict[int, tuple[str, dict[str, str]]] = {
    2: ("slice_norm.nii.gz", {"seg4": "slice_seg4.nii.gz", "seg24": "slice_seg24.nii.gz"}),
    3: ("aligned_norm.nii.gz", {"seg4": "aligned_seg4.nii.gz", "seg35": "aligned_seg35.nii.gz"}),
}

#: the authors' split sizes for the full 414 subjects: (train, val, test) and the pairing of each split
OASIS_SPLITS: dict[int, dict[str, object]] = {
    2: {"sizes": (201, 12, 201), "pairing": {"train": "all", "val": "both", "test": "both"}},
    3: {"sizes": (384, 10, 20), "pairing": {"train": "both", "val": "forward", "test": "forward"}},
}


def oasis_subjects(dataset_dir: str | Path, spatial_dims: int = 2) -> list[str]:
    """Subject folders in split order: ``subjects.txt`` when present, else the sorted ``OASIS_*`` folders.

    Every subject must hold the image file of ``spatial_dims``.

    Raises:
        DatasetLayoutError: when the folder is missing, lists a subject that does not exist, holds no subject, or
            a subject folder lacks its image (naming the missing file).
    """
    root = Path(dataset_dir)
    if spatial_dims not in OASIS_FILES:
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if not root.is_dir():
        raise DatasetLayoutError(root, "dataset folder does not exist", OASIS_LAYOUT)
    image_name = OASIS_FILES[spatial_dims][0]
    listing = root / "subjects.txt"
    if listing.is_file():
        names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
        missing = [n for n in names if not (root / n).is_dir()]
        if missing:
            raise DatasetLayoutError(listing, f"lists {len(missing)} missing subject folder(s), e.g. {missing[0]}",
                                     OASIS_LAYOUT)  # fmt: skip
    else:
        names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("OASIS_"))
    if not names:
        raise DatasetLayoutError(root, f"holds no subject folder with {image_name}", OASIS_LAYOUT)
    # a subject folder without its image is damaged data: an error naming it, never a silent drop
    absent = [root / n / image_name for n in names if not (root / n / image_name).is_file()]
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        raise DatasetLayoutError(absent[0], f"subject image is missing{more}", OASIS_LAYOUT)
    return names


def oasis_split(subjects: Sequence[str], split: str, spatial_dims: int = 2) -> list[str]:
    """The subjects of ``split`` (``train``, ``val``, ``test`` or ``all``), in order.

    With the full 414 subjects this is the authors' split; a smaller list keeps its proportions, with at least 2
    subjects for validation and test (a pair needs two subjects).

    Raises:
        ValueError: for an unknown split.
        DatasetLayoutError: when there are too few subjects (fewer than 6).
    """
    if split == "all":
        return list(subjects)
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be one of ['all', 'test', 'train', 'val'], got '{split}'")
    n = len(subjects)
    sizes = OASIS_SPLITS[spatial_dims]["sizes"]
    total = sum(sizes)
    if n >= total:
        n_train, n_val = sizes[0], sizes[1]
        n_test = n - n_train - n_val
    else:
        n_val = max(2, round(n * sizes[1] / total))
        n_test = max(2, round(n * sizes[2] / total))
        n_train = n - n_val - n_test
    if n_train < 2:
        raise DatasetLayoutError("subjects", f"{n} subjects are too few for train / val / test pairs (need 6)")
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}
    start, stop = bounds[split]
    return list(subjects[start:stop])


def oasis_pairs(subjects: Sequence[str], pairing: str) -> list[tuple[str, str]]:
    """(moving, fixed) pairs: ``all`` ordered pairs, consecutive pairs in ``both`` directions, or ``forward`` only.

    Raises:
        ValueError: for an unknown pairing.
    """
    n = len(subjects)
    if pairing == "all":
        return [(subjects[i], subjects[j]) for i in range(n) for j in range(n) if i != j]
    forward = [(subjects[i], subjects[i + 1]) for i in range(n - 1)]
    if pairing == "forward":
        return forward
    if pairing == "both":
        return forward + [(f, m) for m, f in reversed(forward)]
    raise ValueError(f"pairing must be one of ['all', 'both', 'forward'], got '{pairing}'")


def oasis_pair_datalist(
    dataset_dir: str | Path,
    split: str = "train",
    spatial_dims: int = 2,
    label_set: str | None = None,
    pairing: str | None = None,
    require_labels: bool = True,
) -> list[dict[str, str]]:
    """Datalist of registration pairs: ``image`` (moving), ``fixed``, ``label`` and ``fixed_label``, ``pair``.

    Args:
        dataset_dir: root of the neurite-oasis layout.
        split: ``train``, ``val``, ``test`` or ``all``.
        spatial_dims: 2 (``slice_*`` files) or 3 (``aligned_*`` files).
        label_set: ``seg24`` / ``seg4`` (2D) or ``seg35`` / ``seg4`` (3D); default the finest; ``"none"`` leaves
            labels out.
        pairing: override the split's pairing (``all``, ``both``, ``forward``); default the authors'.
        require_labels: stop when a label file is missing (otherwise items without labels carry none).

    Raises:
        DatasetLayoutError: for a missing folder or label file, or no pair.
    """
    image_name, label_files = OASIS_FILES[spatial_dims]
    label_set = label_set or ("seg24" if spatial_dims == 2 else "seg35")
    if label_set != "none" and label_set not in label_files:
        raise ValueError(f"label_set must be one of {sorted(label_files) + ['none']} for {spatial_dims}D, "
                         f"got '{label_set}'")  # fmt: skip
    root = Path(dataset_dir)
    subjects = oasis_split(oasis_subjects(root, spatial_dims), split, spatial_dims)
    if pairing is None:
        pairing = "both" if split == "all" else OASIS_SPLITS[spatial_dims]["pairing"][split]
    items = []
    for moving, fixed in oasis_pairs(subjects, pairing):
        item = {"image": str(root / moving / image_name), "fixed": str(root / fixed / image_name),
                "pair": f"{moving}_to_{fixed}"}  # fmt: skip
        if label_set != "none":
            labels = {key: root / subject / label_files[label_set]
                      for key, subject in (("label", moving), ("fixed_label", fixed))}  # fmt: skip
            absent = [p for p in labels.values() if not p.is_file()]
            if absent and require_labels:
                raise DatasetLayoutError(absent[0], f"label file is missing ({label_set})", OASIS_LAYOUT)
            if not absent:
                item.update({k: str(v) for k, v in labels.items()})
        items.append(item)
    if not items:
        raise DatasetLayoutError(root, f"the {split} split has no pair ({len(subjects)} subject(s))", OASIS_LAYOUT)
    return items


def _spatial_shape(array: np.ndarray) -> tuple[int, ...]:
    """Spatial shape of a NIfTI scan: trailing singleton axes dropped (neurite 2D slices are ``H x W x 1``)."""
    shape = list(array.shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape.pop()
    return tuple(shape)


def check_registration_datalist(
    datalist: Sequence[Mapping[str, object]],
    spatial_dims: int | None = None,
    image_keys: Iterable[str] = ("image", "fixed"),
    label_keys: Mapping[str, str] | None = None,
) -> Sequence[Mapping[str, object]]:
    """Check every pair before a workflow writes anything; return the datalist unchanged.

    Each image is decoded once and must be single-channel, finite, not blank (constant), and ``spatial_dims``-D
    (when given); the moving and fixed images of a pair must have the same dimensionality and shape; each label map
    must have its image's shape. Items whose values are not paths (arrays from MONAI Label) are skipped.

    Args:
        datalist: registration items (``image`` = moving, ``fixed``, optional ``label`` and ``fixed_label``).
        spatial_dims: expected number of spatial dimensions (2 or 3), or ``None`` to only require agreement.
        image_keys: the moving and the fixed image keys.
        label_keys: label key -> key of the image it belongs to (default ``label -> image``,
            ``fixed_label -> fixed``).

    Raises:
        DatasetError: for an empty datalist.
        ImageFileError: for the first bad file, naming it and the problem.
    """
    if len(datalist) == 0:
        raise DatasetError("the datalist is empty: the dataset folder holds no usable pair")
    label_keys = dict(label_keys or {"label": "image", "fixed_label": "fixed"})
    image_keys = tuple(image_keys)
    shapes: dict[str, tuple[int, ...]] = {}  # cache: a subject appears in many pairs

    def image_shape(path: str, blank_check: bool, is_label: bool = False) -> tuple[int, ...]:
        cache_key = f"{path}|{is_label}"
        if cache_key in shapes:
            return shapes[cache_key]
        array = check_image(path, channels=1)
        shape = _spatial_shape(array)
        if spatial_dims is not None and len(shape) != spatial_dims:
            raise ImageFileError(path, f"is a {len(shape)}D image of shape {shape}, expected a {spatial_dims}D image")
        if blank_check and float(np.nanmax(array)) == float(np.nanmin(array)):
            raise ImageFileError(path, f"image is blank: every voxel equals {float(np.nanmin(array))}")
        if is_label and np.issubdtype(array.dtype, np.floating) and not np.all(np.mod(array, 1) == 0):
            raise ImageFileError(path, "label map holds non-integer values")
        shapes[cache_key] = shape
        return shape

    for item in datalist:
        paths = {k: item.get(k) for k in image_keys}
        if not all(isinstance(p, (str, Path)) for p in paths.values()):
            continue
        moving_key, fixed_key = image_keys
        found = {k: image_shape(str(p), blank_check=True) for k, p in paths.items()}
        if len(found[moving_key]) != len(found[fixed_key]):
            raise ImageFileError(
                paths[fixed_key],
                f"is a {len(found[fixed_key])}D image but the moving image {paths[moving_key]} is "
                f"{len(found[moving_key])}D: a pair must have the same dimensionality",
            )
        if found[moving_key] != found[fixed_key]:
            raise ImageFileError(
                paths[fixed_key],
                f"shape {found[fixed_key]} differs from the moving image's shape {found[moving_key]} "
                f"({paths[moving_key]}); resample the pair to one grid first",
            )
        for label_key, owner in label_keys.items():
            label_path = item.get(label_key)
            if not isinstance(label_path, (str, Path)):
                continue
            label_shape = image_shape(str(label_path), blank_check=False, is_label=True)
            if label_shape != found[owner]:
                raise ImageFileError(label_path, f"label shape {label_shape} differs from its image's shape "
                                                 f"{found[owner]} ({paths[owner]})")  # fmt: skip
    return datalist
