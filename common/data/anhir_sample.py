"""Deterministic ANHIR-layout sample built from scikit-image's ``immunohistochemistry`` image.

Each pair: a tissue blob (a crop of the IHC image inside a smooth random mask, white glass around it) re-stained
through HED colour space as the source; the target is the same tissue (an overlapping crop) warped by a random
known affine (rotation including a multiple of 90 degrees, scale, shear, translation) and re-stained differently.
Landmarks are placed on source tissue and mapped exactly, so rTRE is exact.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .anhir import write_landmarks
from .atomic import write_folder_atomically

__all__ = ["random_histology_affine", "write_anhir_sample"]


def random_histology_affine(
    rng: np.random.Generator, size: int, max_angle: float = 15.0, scale: tuple[float, float] = (0.9, 1.1),
    shear: float = 0.05,
) -> np.ndarray:  # fmt: skip
    """3x3 source-to-target pixel affine about the image centre: k*90 deg + small rotation, scale, shear, shift.

    Args:
        rng: random generator.
        size: image side (pixels).
        max_angle: the rotation is a random multiple of 90 degrees plus U(-max_angle, max_angle).
        scale: range of the isotropic scale.
        shear: the shear is U(-shear, shear).
    """
    angle = np.deg2rad(90.0 * rng.integers(0, 4) + rng.uniform(-max_angle, max_angle))
    scale = rng.uniform(*scale)
    shear = rng.uniform(-shear, shear)
    shift = rng.uniform(-0.04, 0.04, size=2) * size
    c, s = np.cos(angle), np.sin(angle)
    lin = scale * np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    centre = np.array([(size - 1) / 2.0] * 2)
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = centre - lin @ centre + shift
    return m


def _restain(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from skimage.color import hed2rgb, rgb2hed

    hed = rgb2hed(rgb)
    hed = hed * rng.uniform(0.7, 1.3, size=3) + rng.uniform(-0.02, 0.02, size=3)
    return np.clip(hed2rgb(hed), 0, 1)


def _blob(rng: np.random.Generator, size: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(rng.standard_normal((size, size)), size / 10)
    yy, xx = np.mgrid[:size, :size] / (size - 1) - 0.5
    radial = 1.0 - (xx**2 + yy**2) / 0.14
    field = radial + noise / noise.std() * 0.35
    return gaussian_filter((field > 0.35).astype(np.float32), 1.5)


def _warp(image: np.ndarray, m: np.ndarray, size: int, cval: float) -> np.ndarray:
    from scipy.ndimage import map_coordinates

    inv = np.linalg.inv(m)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    chans = [map_coordinates(image[..., c], [sy, sx], order=1, cval=cval) for c in range(image.shape[-1])]
    return np.stack(chans, -1)


#: short folder prefix of scikit-image images (others use their own name)
_PREFIX = {"immunohistochemistry": "ihc"}


def _source_image(name: str, size: int) -> np.ndarray:
    """A scikit-image image as float RGB in [0, 1], shrunk (antialiased) when its shorter side exceeds 2 ``size``."""
    from skimage import data
    from skimage.transform import rescale

    image = np.asarray(getattr(data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, -1)
    image = image[..., :3].astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    if min(image.shape[:2]) > 2 * size:
        image = rescale(image, 2 * size / min(image.shape[:2]), channel_axis=-1, anti_aliasing=True)
    if min(image.shape[:2]) <= size:
        raise ValueError(f"scikit-image's '{name}' image {image.shape[:2]} is too small for {size} px pairs")
    return np.clip(image, 0.0, 1.0)


def write_anhir_sample(
    root: str | Path, seed: int = 0, num_pairs: int = 12, num_evaluation: int = 4, size: int = 256,
    num_landmarks: int = 12, overwrite: bool = False, images: Sequence[str] = ("immunohistochemistry",),
    max_angle: float = 15.0, scale: tuple[float, float] = (0.9, 1.1), shear: float = 0.05,
) -> Path:  # fmt: skip
    """Write the sample in ANHIR's layout: ``dataset.csv`` and ``ihc_<k>/scale-100pc/{source,target}.{png,csv}``.

    The last ``num_evaluation`` pairs have status ``evaluation`` (with both landmark files, unlike the real
    challenge, so the sample can be scored), the others ``training``.

    Args:
        root: destination folder.
        seed: random seed (same pixels for the same arguments).
        num_pairs: pairs written.
        num_evaluation: the last pairs, of status ``evaluation``.
        size: side of the square images.
        num_landmarks: landmarks per pair.
        overwrite: replace an existing non-empty ``root``.
        images: scikit-image ``data`` images the pairs are cut from, in turn (pair ``k`` from ``images[k % n]``);
            grey images are repeated to RGB, large ones shrunk to a shorter side of 2 ``size``.
        max_angle: rotation beyond the multiple of 90 degrees (:func:`random_histology_affine`).
        scale: range of the affines' scale.
        shear: range of the affines' shear.
    """
    from PIL import Image

    sources = [_source_image(name, size) for name in images]

    def fill(tmp: Path) -> None:
        rng = np.random.default_rng(seed)
        rows = []
        for k in range(num_pairs):
            crop = int(size * 0.9)
            source_image = sources[k % len(sources)]
            high = np.asarray(source_image.shape[:2]) - size
            # a square image draws both offsets at once (the original sample's random sequence)
            r0, c0 = rng.integers(0, high[0], size=2) if high[0] == high[1] else rng.integers(0, high)
            tissue = source_image[r0 : r0 + size, c0 : c0 + size]
            mask = _blob(rng, size)[..., None]
            base = tissue * mask + (1.0 - mask) * 0.96  # white glass around the tissue
            m = random_histology_affine(rng, size, max_angle, scale, shear)
            source = _restain(base, rng)
            source = source * mask + (1.0 - mask) * np.clip(source, 0.93, 1.0)
            target = _warp(_restain(base, rng) * mask + (1.0 - mask), m, size, cval=1.0)
            target = np.clip(target, 0, 1)
            del crop
            # landmarks on source tissue that stay on target tissue
            warped_mask = _warp(mask, m, size, cval=0.0)[..., 0]
            points = []
            while len(points) < num_landmarks:
                p = rng.uniform(0.1 * size, 0.9 * size, size=2)
                q = m[:2, :2] @ p + m[:2, 2]
                if mask[int(p[1]), int(p[0]), 0] > 0.9 and 0 <= q[0] < size - 1 and 0 <= q[1] < size - 1 \
                        and warped_mask[int(q[1]), int(q[0])] > 0.9:  # fmt: skip
                    points.append(p)
            src_pts = np.asarray(points)
            tgt_pts = src_pts @ m[:2, :2].T + m[:2, 2]
            name = images[k % len(images)]
            rel = f"{_PREFIX.get(name, name)}_{k + 1}/scale-100pc"
            folder = tmp / rel
            folder.mkdir(parents=True)
            Image.fromarray((source * 255).round().astype(np.uint8)).save(folder / "source.png")
            Image.fromarray((target * 255).round().astype(np.uint8)).save(folder / "target.png")
            write_landmarks(folder / "source.csv", src_pts)
            write_landmarks(folder / "target.csv", tgt_pts)
            status = "evaluation" if k >= num_pairs - num_evaluation else "training"
            diag = float(np.hypot(size, size))
            rows.append([k, f"{rel}/source.png", f"{rel}/source.csv", f"{rel}/target.png", f"{rel}/target.csv",
                         f"{diag:.2f}", f"({size}, {size})", status])  # fmt: skip
        with (tmp / "dataset.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["", "Source image", "Source landmarks", "Target image", "Target landmarks",
                             "Image diagonal [pixels]", "Image size [pixels]", "status"])  # fmt: skip
            writer.writerows(rows)

    return write_folder_atomically(root, fill, overwrite=overwrite)
