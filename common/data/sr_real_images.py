"""Packaged real images, split once into those super-resolution trains on and those it is judged on.

Both super-resolution bundles and their benchmarks take their images from here, so "never test on an image the
training saw" holds by construction: a training source and a held-out source are different pictures, not
different crops of one picture.

- :data:`SR_TRAINING_SOURCES`: natural photographs, textures and a fundus photograph from scikit-image
  (``astronaut``, ``coffee``, ``chelsea``, ``rocket``, ``brick``, ``grass``, ``gravel``, ``camera``, ``moon``,
  ``retina``, ``hubble_deep_field``, the left ``stereo_motorcycle`` view). Samples, training data and validation
  tiles are cut from these.
- :data:`SR_HELD_OUT_SOURCES`: microscopy and other pictures no sample or training set uses
  (``immunohistochemistry``: a DAB/haematoxylin tissue section, the closest to the pathology bundles' domain;
  ``cell``: a grey phase-contrast-like cell image; ``coins``; ``microaneurysms``: a small grey retinal crop).

Grey images are returned as three identical channels, so every source is ``(H, W, 3)`` ``uint8``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["SR_HELD_OUT_SOURCES", "SR_TRAINING_SOURCES", "real_sr_source", "real_sr_tiles"]

SR_TRAINING_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "camera", "moon",
                       "retina", "hubble_deep_field", "motorcycle_left")  # fmt: skip
SR_HELD_OUT_SOURCES = ("immunohistochemistry", "cell", "coins", "microaneurysms")


def real_sr_source(name: str) -> np.ndarray:
    """One packaged image as ``(H, W, 3)`` ``uint8`` (grey replicated; retina cropped to the fundus disc).

    Args:
        name: one of :data:`SR_TRAINING_SOURCES` or :data:`SR_HELD_OUT_SOURCES`.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    from skimage import data

    known = SR_TRAINING_SOURCES + SR_HELD_OUT_SOURCES
    if name not in known:
        raise ValueError(f"unknown real image '{name}'; known: {list(known)}")
    if name == "motorcycle_left":
        image = data.stereo_motorcycle()[0]
    else:
        image = getattr(data, name)()
    if name == "retina":  # the fundus disc; the black surround carries no texture
        h, w = image.shape[:2]
        image = image[h // 2 - 400 : h // 2 + 400, w // 2 - 400 : w // 2 + 400]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def real_sr_tiles(
    names: Sequence[str], tile_size: int, per_image: int, seed: int = 0, min_std: float = 8.0
) -> list[tuple[str, np.ndarray]]:
    """Deterministic textured tiles cut from packaged images (for benchmarks and training sets).

    A candidate crop is kept only if its grey-level standard deviation reaches ``min_std`` (flat background, where
    any upsampler is exact, would hide differences); images smaller than ``tile_size`` give one tile of their size
    rounded down to a multiple of 12 (divisible by scales 2, 3, 4 and 6).

    Args:
        names: source names (see :func:`real_sr_source`).
        tile_size: tile height and width in pixels.
        per_image: tiles per source image.
        seed: seed of the crop positions.
        min_std: smallest grey-level standard deviation of a kept tile (0-255 scale).

    Returns:
        ``(name, tile)`` pairs, ``tile`` ``(tile_size, tile_size, 3)`` ``uint8``.
    """
    rng = np.random.default_rng(seed)
    tiles = []
    for name in names:
        image = real_sr_source(name)
        h, w = image.shape[:2]
        size = min(tile_size, (min(h, w) // 12) * 12)
        grey = image.mean(axis=2)
        kept, tries = 0, 0
        while kept < per_image and tries < 200 * per_image:
            tries += 1
            y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            if size < tile_size and kept:  # a small image gives one tile
                break
            if grey[y : y + size, x : x + size].std() < min_std:
                continue
            tiles.append((name, np.ascontiguousarray(image[y : y + size, x : x + size])))
            kept += 1
    return tiles
