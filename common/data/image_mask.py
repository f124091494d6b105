"""Reader for 2D datasets stored as an image folder and a mask folder with matching file names."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .errors import DatasetLayoutError
from .splits import SPLIT_NAMES, split_groups
from .validation import RASTER_SUFFIXES

__all__ = ["IMAGE_MASK_LAYOUT", "image_mask_pairs", "image_mask_datalist"]

IMAGE_MASK_LAYOUT = """\
<dataset_dir>/
  images/<case>.png        (PNG, JPEG or TIFF; RGB or grey)
  masks/<case>.png         (same file stem; 0 = background, any other value = foreground)
  [splits.json]            optional {"train": [<case>, ...], "val": [...], "test": [...]}
"""


def image_mask_pairs(
    dataset_dir: str | Path, image_dir: str = "images", mask_dir: str = "masks", require_masks: bool = True
) -> list[dict[str, str]]:
    """Pair every image with the mask of the same stem; items have ``image``, ``label`` and ``case``.

    Raises:
        DatasetLayoutError: for a missing folder, an empty image folder or an image without its mask.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetLayoutError(root, "dataset folder does not exist", IMAGE_MASK_LAYOUT)
    images_path = root / image_dir
    if not images_path.is_dir():
        raise DatasetLayoutError(root, f"has no '{image_dir}/' folder", IMAGE_MASK_LAYOUT)
    images = sorted(p for p in images_path.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
    if not images:
        raise DatasetLayoutError(images_path, "holds no image files", IMAGE_MASK_LAYOUT)
    masks = {p.stem: p for p in (root / mask_dir).glob("*") if p.suffix.lower() in RASTER_SUFFIXES}
    pairs = []
    for image in images:
        item = {"image": str(image), "case": image.stem}
        if image.stem in masks:
            item["label"] = str(masks[image.stem])
        elif require_masks:
            raise DatasetLayoutError(image, f"has no mask '{mask_dir}/{image.stem}.*'", IMAGE_MASK_LAYOUT)
        pairs.append(item)
    return pairs


def image_mask_datalist(
    dataset_dir: str | Path,
    split: str = "train",
    fractions: Sequence[float] = (0.64, 0.16, 0.20),
    seed: int = 0,
    require_masks: bool = True,
) -> list[dict[str, str]]:
    """Pairs of one split: from ``splits.json`` when present, else a seeded shuffle by case.

    The default fractions follow the SFRSeg-Net protocol: 39 of 49 images for training (4:1 train/validation)
    and 10 held out for testing.
    """
    if split not in (*SPLIT_NAMES, "all"):
        raise ValueError(f"split must be one of {(*SPLIT_NAMES, 'all')}, got '{split}'")
    pairs = image_mask_pairs(dataset_dir, require_masks=require_masks)
    if split == "all":
        return pairs
    split_file = Path(dataset_dir) / "splits.json"
    if split_file.is_file():
        try:
            names = set(json.loads(split_file.read_text())[split])
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetLayoutError(split_file, f"cannot read the '{split}' list ({exc})", IMAGE_MASK_LAYOUT) from exc
        unknown = sorted(names - {str(p["case"]) for p in pairs})
        if unknown:  # a listed case that cannot be found is an error, never a silent drop
            message = f"'{split}' names {len(unknown)} image(s) not in the folder: {unknown[:5]}"
            raise DatasetLayoutError(split_file, message, IMAGE_MASK_LAYOUT)
    else:
        names = set(split_groups([p["case"] for p in pairs], fractions, seed)[split])
    return [p for p in pairs if p["case"] in names]
