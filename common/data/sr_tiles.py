"""Folders of high-resolution microscopy tiles for super-resolution bundles, and a deterministic sample of them.

Layout (one folder per split, optional region-of-interest masks with the same file stem)::

    <dataset_dir>/
    ├── train/<name>.png|.tif|.tiff|.jpg|.jpeg    RGB high-resolution tiles
    ├── train_roi/<name>.png                        optional: ROI mask (non-zero = region of interest), same size
    ├── val/ ...          val_roi/ ...
    └── test/ ...         test_roi/ ...

Low-resolution inputs are not stored: the bundles make them on the fly with the paper's degradation
(:mod:`common.transforms.degradation`).

The sample (:func:`write_sr_tile_sample`) cuts tiles from the packaged real images of
:data:`common.data.sr_real_images.SR_TRAINING_SOURCES` (natural photographs, textures, a fundus photograph, a
telescope field; never the held-out microscopy images of ``SR_HELD_OUT_SOURCES``, on which the real-image benchmarks
test), with ROI masks of dark, haematoxylin-like structures found by thresholding the haematoxylin channel of a HED
colour deconvolution. Train tiles and the sample's val/test tiles come from disjoint areas of each source image.

Command line: ``python -m common.data.sr_tiles OUT_DIR [--tile-size N] [--seed S] [--overwrite]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..image_io import read_image_array
from .atomic import write_folder_atomically
from .errors import DatasetError, DatasetLayoutError, ImageFileError
from .sr_real_images import SR_TRAINING_SOURCES, real_sr_source

__all__ = ["SR_TILE_LAYOUT", "check_sr_datalist", "sr_tile_datalist",
           "write_sr_tile_sample"]  # fmt: skip

SR_TILE_SPLITS = ("train", "val", "test")
SR_TILE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
SR_TILE_LAYOUT = """\
<dataset_dir>/
├── train/<name>.png (.tif .tiff .jpg .jpeg)   RGB high-resolution tiles
├── train_roi/<name>.png                        optional ROI mask (non-zero = region of interest), same size
├── val/   and val_roi/
└── test/  and test_roi/
"""


def sr_tile_datalist(dataset_dir: str, split: str, require_roi: bool = False) -> list[dict]:
    """List the tiles of one split.

    Args:
        dataset_dir: root of the dataset (layout in :data:`SR_TILE_LAYOUT`).
        split: ``"train"``, ``"val"`` or ``"test"``.
        require_roi: raise when a tile has no ROI mask (methods whose training needs the ROI).

    Returns:
        Items ``{"image": path}`` sorted by file name, with ``"roi": path`` when ``<split>_roi/<stem>.png`` exists.

    Raises:
        ValueError: ``split`` is not one of train/val/test.
        DatasetLayoutError: the split folder is missing or holds no image, or a required ROI mask is missing.
    """
    if split not in SR_TILE_SPLITS:
        raise ValueError(f"split must be one of {list(SR_TILE_SPLITS)}, got '{split}'")
    folder = Path(dataset_dir) / split
    if not folder.is_dir():
        raise DatasetLayoutError(folder, "folder does not exist", SR_TILE_LAYOUT)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SR_TILE_SUFFIXES)
    if not files:
        raise DatasetLayoutError(folder, f"holds no image ({'/'.join(SR_TILE_SUFFIXES)})", SR_TILE_LAYOUT)
    roi_dir = Path(dataset_dir) / f"{split}_roi"
    items = []
    for path in files:
        item = {"image": str(path)}
        roi = roi_dir / f"{path.stem}.png"
        if roi.is_file():
            item["roi"] = str(roi)
        elif require_roi:
            raise DatasetLayoutError(roi, f"ROI mask of {path.name} is missing", SR_TILE_LAYOUT)
        items.append(item)
    return items


def check_sr_datalist(items: Sequence[Mapping[str, object]], min_size: int, roi_key: str | None = "roi") -> None:
    """Decode every tile (and ROI mask) once and check it before a workflow writes anything.

    Args:
        items: datalist items; values that are not paths (arrays passed by MONAI Label) are skipped.
        min_size: the smallest allowed height and width in pixels (e.g. the training patch size).
        roi_key: key of the ROI mask; ``None`` skips the masks.

    Raises:
        DatasetError: the datalist is empty.
        ImageFileError: naming the first file that cannot be decoded, is not RGB, is smaller than ``min_size`` or
            whose ROI mask has a different size or more than one channel.
    """
    if len(items) == 0:
        raise DatasetError("the datalist is empty: the dataset folder holds no usable tiles")
    for item in items:
        path = item.get("image")
        if not isinstance(path, (str, Path)):
            continue
        image = read_image_array(path)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            found = 1 if image.ndim == 2 else image.shape[-1]
            raise ImageFileError(path, f"has {found} channel(s), expected an RGB image (3 channels)")
        if image.shape[2] == 4 and not np.all(image[..., 3] == image[..., 3].flat[0]):
            raise ImageFileError(path, "has a varying alpha channel, expected an RGB image (3 channels)")
        height, width = image.shape[:2]
        if min(height, width) < min_size:
            raise ImageFileError(path, f"is {height}x{width} pixels, smaller than the required {min_size}x{min_size}")
        roi_path = item.get(roi_key) if roi_key else None
        if not isinstance(roi_path, (str, Path)):
            continue
        roi = read_image_array(roi_path)
        if roi.ndim == 3 and roi.shape[2] > 1 and not all(np.array_equal(roi[..., 0], roi[..., c])
                                                           for c in range(roi.shape[2])):  # fmt: skip
            raise ImageFileError(roi_path, f"ROI mask has {roi.shape[2]} differing channels, expected one channel")
        if roi.shape[:2] != (height, width):
            raise ImageFileError(
                roi_path, f"ROI mask is {roi.shape[0]}x{roi.shape[1]}, its image {path} is {height}x{width}"
            )


def _nuclei_mask(tile: np.ndarray) -> np.ndarray:
    """ROI of an RGB tile: haematoxylin (HED) above its Otsu threshold, cleaned; else dark thin structures."""
    from scipy import ndimage
    from skimage.color import rgb2hed
    from skimage.filters import threshold_otsu

    signal = ndimage.gaussian_filter(rgb2hed(tile)[..., 0], 1.0)
    if np.ptp(signal) < 1e-6:  # no haematoxylin (fundus photograph): dark thin structures (vessels) instead
        green = ndimage.gaussian_filter(tile[..., 1].astype(np.float64), 1.0)
        signal = ndimage.grey_closing(green, size=(9, 9)) - green  # black top-hat
    if np.ptp(signal) < 1e-6:
        return np.zeros(tile.shape[:2], dtype=bool)
    mask = signal > threshold_otsu(signal)
    mask = ndimage.binary_opening(mask, iterations=1)
    return ndimage.binary_fill_holes(mask)


def _sources() -> list[tuple[str, np.ndarray]]:
    """The packaged training images the sample is cut from (:data:`SR_TRAINING_SOURCES`, in that order)."""
    return [(name, real_sr_source(name)) for name in SR_TRAINING_SOURCES]


def _split_boxes(height: int, width: int, size: int) -> dict[str, tuple[int, int, int, int]]:
    """Disjoint ``(top, left, bottom, right)`` areas of one source for the train, val and test tiles.

    The held-out band is the last ``size`` rows (the last ``size`` columns of a landscape image); validation tiles
    come from its first part (up to 1.5 ``size`` along the band) and test tiles from the rest. A split whose area
    cannot hold a tile is left out (see :func:`write_sr_tile_sample`).
    """
    if height >= width:
        band = max(size, min(size * 3 // 2, width - size))
        return {"train": (0, 0, height - size, width), "val": (height - size, 0, height, band),
                "test": (height - size, band, height, width)}  # fmt: skip
    band = max(size, min(size * 3 // 2, height - size))
    return {"train": (0, 0, height, width - size), "val": (0, width - size, band, width),
            "test": (band, width - size, height, width)}  # fmt: skip


def _fits(box: tuple[int, int, int, int], size: int) -> bool:
    top, left, bottom, right = box
    return bottom - top >= size and right - left >= size


def _cut(
    rng: np.random.Generator, image: np.ndarray, box: tuple[int, int, int, int], size: int, min_std: float = 8.0
) -> np.ndarray:
    """A random textured ``size`` x ``size`` crop inside ``box = (top, left, bottom, right)``, random D4 pose.

    Up to 50 positions are drawn; the first whose grey-level standard deviation reaches ``min_std`` is kept (else the
    most textured one), so flat background, where every up-sampler is exact, does not fill the sample.
    """
    top, left, bottom, right = box
    best, best_std = None, -1.0
    for _ in range(50):
        y = int(rng.integers(top, bottom - size + 1))
        x = int(rng.integers(left, right - size + 1))
        tile = image[y : y + size, x : x + size]
        std = float(tile.mean(axis=2).std())
        if std > best_std:
            best, best_std = tile, std
        if std >= min_std:
            break
    tile = np.rot90(best, int(rng.integers(0, 4)))
    return np.ascontiguousarray(tile[:, ::-1] if rng.random() < 0.5 else tile)


def write_sr_tile_sample(
    dataset_dir: str, tile_size: int = 192, counts: tuple[int, int, int] = (24, 4, 6), seed: int = 0
) -> None:
    """Write a deterministic sample of RGB tiles with ROI masks in the :data:`SR_TILE_LAYOUT`, atomically.

    Tiles are cut from the packaged training images (:data:`SR_TRAINING_SOURCES`; the held-out real images of
    :data:`SR_HELD_OUT_SOURCES` are never used). Each source is split into a training area and a held-out band of
    ``tile_size`` rows (columns for landscape images); validation tiles come from the first part of that band and
    test tiles from the rest, so no val/test pixel is seen in training. Tiles of a split cycle through the sources
    whose area for that split holds a tile; each is textured (grey-level standard deviation >= 8 where the area has
    such a crop) and gets a random rotation/flip. An existing ``dataset_dir`` is replaced.

    Args:
        dataset_dir: destination folder.
        tile_size: tile height and width (32 to 256; the smallest source is 300 pixels high).
        counts: number of (train, val, test) tiles.
        seed: seed of the crop positions and poses.

    Raises:
        ValueError: ``tile_size`` out of range or a negative/zero count.
    """
    if not 32 <= tile_size <= 256:
        raise ValueError(f"tile_size must be between 32 and 256 pixels, got {tile_size}")
    if len(counts) != 3 or min(counts) < 1:
        raise ValueError(f"counts must be three positive numbers (train, val, test), got {counts}")
    sources = _sources()

    def fill(folder: Path) -> None:
        rng = np.random.default_rng(seed)
        for split, count in zip(SR_TILE_SPLITS, counts):
            (folder / split).mkdir()
            (folder / f"{split}_roi").mkdir()
            usable = []
            for _, image in sources:
                box = _split_boxes(image.shape[0], image.shape[1], tile_size)[split]
                if _fits(box, tile_size):
                    usable.append((image, box))
            for i in range(count):
                image, box = usable[i % len(usable)]
                tile = _cut(rng, image, box, tile_size)
                name = f"tile_{i:03d}.png"
                Image.fromarray(tile, mode="RGB").save(folder / split / name)
                mask = _nuclei_mask(tile).astype(np.uint8) * 255
                Image.fromarray(mask, mode="L").save(folder / f"{split}_roi" / name)

    write_folder_atomically(dataset_dir, fill, overwrite=True)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m common.data.sr_tiles", description=write_sr_tile_sample.__doc__)
    parser.add_argument("out_dir", help="destination folder (replaced)")
    parser.add_argument("--tile-size", type=int, default=192)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_sr_tile_sample(args.out_dir, tile_size=args.tile_size, seed=args.seed)
    print(f"wrote the super-resolution tile sample to {Path(args.out_dir).resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
