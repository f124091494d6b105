"""A super-resolution tile sample from real packaged images: training tiles and held-out tiles from different pictures.

:func:`write_sr_real_sample` writes the layout of :mod:`common.data.sr_tiles` (``train/``, ``val/``, ``test/`` and
their ``*_roi/`` masks) with

- ``train`` and ``val`` tiles cut from :data:`common.data.sr_real_images.SR_TRAINING_SOURCES` (photographs, textures,
  a fundus photograph, an astronomical image): val tiles are extra crops of the same pictures and serve only to pick
  the checkpoint;
- ``test`` tiles cut from :data:`common.data.sr_real_images.SR_HELD_OUT_SOURCES` (immunohistochemistry and coins;
  ``microaneurysms`` is smaller than a tile and ``cell`` is nearly flat, see :data:`SR_REAL_SAMPLE_TEST_SOURCES`),
  pictures no training tile comes from.

The ROI mask (needed by rVTT's patch tester T2) marks the detailed part of a tile: the Sobel gradient magnitude of the
smoothed grey image above its Otsu threshold, i.e. edges and texture, where super resolution has work to do. (The
microscopy datasets of the paper mark nuclei or white blood cells; for mixed real images, structure is the
domain-free equivalent.)

Command line: ``python -m common.data.sr_real_sample OUT_DIR [--tile-size N] [--seed S]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import write_folder_atomically
from .sr_real_images import SR_HELD_OUT_SOURCES, SR_TRAINING_SOURCES, real_sr_tiles

__all__ = ["SR_REAL_SAMPLE_TEST_SOURCES", "structure_mask", "write_sr_real_sample"]

#: held-out pictures whose tiles are textured: ``microaneurysms`` is smaller than a tile and ``cell`` is nearly flat
#: (bicubic already above 50 dB PSNR at x4), where a mean over tiles would be ruled by sub-grey-level errors
SR_REAL_SAMPLE_TEST_SOURCES = tuple(name for name in SR_HELD_OUT_SOURCES if name in ("immunohistochemistry", "coins"))


def structure_mask(tile: np.ndarray) -> np.ndarray:
    """Boolean ROI of an ``(H, W, 3)`` tile: smoothed Sobel gradient magnitude above its Otsu threshold.

    A flat tile (no gradient) gives an empty mask.
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    grey = ndimage.gaussian_filter(np.asarray(tile, dtype=np.float64).mean(axis=2), 1.0)
    magnitude = np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1))
    if np.ptp(magnitude) < 1e-6:
        return np.zeros(grey.shape, dtype=bool)
    return ndimage.binary_opening(magnitude > threshold_otsu(magnitude), iterations=1)


def write_sr_real_sample(
    dataset_dir: str, tile_size: int = 192, counts: tuple[int, int, int] = (3, 1, 4), seed: int = 0
) -> None:
    """Write the real-image sample (module docstring) atomically; an existing ``dataset_dir`` is replaced.

    Args:
        dataset_dir: destination folder.
        tile_size: tile side in pixels (48 to 288; the smallest source kept is 303 pixels high).
        counts: tiles per source image for (train, val) from the training sources and (test) from the held-out ones.
        seed: seed of the crop positions.

    Raises:
        ValueError: ``tile_size`` out of range or a count below 1.
    """
    if not 48 <= tile_size <= 288:
        raise ValueError(f"tile_size must be between 48 and 288 pixels, got {tile_size}")
    if len(counts) != 3 or min(int(c) for c in counts) < 1:
        raise ValueError(f"counts must be three positive numbers (train, val, test per image), got {counts}")
    n_train, n_val, n_test = (int(c) for c in counts)
    training = real_sr_tiles(SR_TRAINING_SOURCES, tile_size, n_train + n_val, seed=seed)
    split = {"train": [], "val": []}
    for index, (name, tile) in enumerate(training):
        split["train" if index % (n_train + n_val) < n_train else "val"].append((name, tile))
    split["test"] = real_sr_tiles(SR_REAL_SAMPLE_TEST_SOURCES, tile_size, n_test, seed=seed + 1)

    def fill(folder: Path) -> None:
        for name, tiles in split.items():
            (folder / name).mkdir()
            (folder / f"{name}_roi").mkdir()
            for i, (source, tile) in enumerate(tiles):
                stem = f"{i:03d}_{source}.png"
                Image.fromarray(tile, mode="RGB").save(folder / name / stem)
                mask = structure_mask(tile).astype(np.uint8) * 255
                Image.fromarray(mask, mode="L").save(folder / f"{name}_roi" / stem)

    write_folder_atomically(dataset_dir, fill, overwrite=True)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m common.data.sr_real_sample", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("out_dir", help="destination folder (replaced)")
    parser.add_argument("--tile-size", type=int, default=192)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_sr_real_sample(args.out_dir, tile_size=args.tile_size, seed=args.seed)
    print(f"wrote the real-image super-resolution sample to {Path(args.out_dir).resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
