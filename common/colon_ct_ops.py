"""The HU mixture, its thresholds and the rectum detection: shared by colon CT data checks and the MRF labelling.

Steps 1 to 3 of the MRF initial labelling (Harb et al., ICPR 2024, Algorithm 1), each its own function:

1. :func:`fit_hu_mixture`: the HU histogram of the volume, fitted by EM with four Gaussians (air, fat, muscle,
   opacified fluid) started at the authors' means (-950, -100, 100, 500 HU, std 400).
2. :func:`em_thresholds`: two thresholds, air/fat (first HU where the weighted fat density exceeds the air density)
   and muscle/fluid (first HU above the muscle mean where fluid exceeds muscle).
3. :func:`detect_rectum`: in the lowest slices, the disk-like air region inside the body (:func:`body_mask`; the
   rectum is the only air there); :class:`RectumNotFoundError` when there is none.

They live here, beside the kinds, because two kinds use them: ``common.data.check_colon_datalist`` finds the
rectum of every volume before a workflow writes anything, and ``common.transforms.mrf_initial_labels`` continues
from them (region growing, graph cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .data.errors import DatasetError

__all__ = [
    "EM_INITIAL_MEANS",
    "EM_MEAN_RANGES",
    "HUMixture",
    "RectumNotFoundError",
    "body_mask",
    "detect_rectum",
    "em_thresholds",
    "fit_hu_mixture",
]

EM_INITIAL_MEANS: tuple[float, float, float, float] = (-950.0, -100.0, 100.0, 500.0)
"""Initial means (HU) of the air, fat, muscle and opacified-fluid Gaussians (the authors' code)."""
EM_MEAN_RANGES: tuple[tuple[float, float], ...] = ((-1100.0, -600.0), (-200.0, -50.0), (0.0, 150.0), (200.0, 1700.0))
"""HU interval each Gaussian's mean is kept in during EM (air, fat, muscle, opacified fluid)."""


class RectumNotFoundError(DatasetError):
    """No disk-like air region in the lowest slices of a volume: the sequential segmentation has no start."""


@dataclass
class HUMixture:
    """Four 1D Gaussians fitted to a HU histogram, in the order air, fat, muscle, fluid."""

    weights: np.ndarray
    means: np.ndarray
    stds: np.ndarray

    def densities(self, hu: np.ndarray) -> np.ndarray:
        """Weighted densities ``w_k N(hu; mu_k, sigma_k)``, shape ``(4, *hu.shape)``."""
        hu = np.asarray(hu, dtype=np.float64)[None]
        m, s, w = (a.reshape((-1,) + (1,) * (hu.ndim - 1)) for a in (self.means, self.stds, self.weights))
        return w * np.exp(-0.5 * ((hu - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))

    def lumen_posterior(self, hu: np.ndarray) -> np.ndarray:
        """Posterior probability that a voxel is air or opacified fluid (the colon lumen's classes)."""
        d = self.densities(hu)
        return (d[0] + d[3]) / np.maximum(d.sum(0), 1e-300)


def fit_hu_mixture(
    hu: np.ndarray,
    means: Sequence[float] = EM_INITIAL_MEANS,
    std: float = 400.0,
    iterations: int = 100,
    hu_range: tuple[float, float] = (-1100.0, 1700.0),
    bin_width: float = 10.0,
    mean_ranges: Sequence[tuple[float, float]] = EM_MEAN_RANGES,
    max_std: float = 300.0,
) -> HUMixture:
    """Fit four Gaussians to the volume's HU histogram by EM (weights, means and standard deviations).

    Args:
        hu: the volume in HU.
        means: initial means, air, fat, muscle, fluid.
        std: initial standard deviation of every component.
        iterations: EM iterations.
        hu_range: histogram range; values outside are clipped to it.
        bin_width: histogram bin width in HU.
        mean_ranges: HU interval each mean is kept in (air, fat, muscle, fluid).
        max_std: largest standard deviation of a component.

    Returns:
        The fitted :class:`HUMixture`.

    Raises:
        ValueError: an empty volume, or one with non-finite values.
    """
    hu = np.asarray(hu, dtype=np.float64)
    if hu.size == 0 or not np.isfinite(hu).all():
        raise ValueError("the HU mixture needs a non-empty volume of finite values")
    edges = np.arange(hu_range[0], hu_range[1] + bin_width, bin_width)
    counts, _ = np.histogram(np.clip(hu, hu_range[0], hu_range[1] - 1e-6), bins=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    p = counts / counts.sum()
    mixture = HUMixture(np.full(4, 0.25), np.asarray(means, dtype=np.float64), np.full(4, float(std)))
    mean_ranges = np.asarray(mean_ranges, dtype=np.float64)
    for _ in range(iterations):
        dens = mixture.densities(centres)
        resp = dens / np.maximum(dens.sum(0, keepdims=True), 1e-300)  # (4, bins)
        mass = (resp * p).sum(1)
        mass = np.maximum(mass, 1e-12)
        mixture.weights = mass / mass.sum()
        means = (resp * p * centres).sum(1) / mass
        # each Gaussian keeps to its tissue's HU range: without it, when opacified fluid is a small fraction of the
        # voxels, the fluid Gaussian drifts down onto soft tissue and one Gaussian spreads over fat and fluid
        mixture.means = np.clip(means, mean_ranges[:, 0], mean_ranges[:, 1])
        var = (resp * p * (centres - mixture.means[:, None]) ** 2).sum(1) / mass
        mixture.stds = np.sqrt(np.clip(var, (bin_width / 2) ** 2, max_std**2))
    return mixture


def em_thresholds(mixture: HUMixture, grid: tuple[float, float] = (-2000.0, 1500.0)) -> tuple[float, float]:
    """The air/fat and muscle/fluid thresholds of a fitted mixture.

    Threshold 1 is the first HU (from the air mean up) where the weighted fat density exceeds the air density;
    threshold 2 the first HU above the muscle mean where the fluid density exceeds the muscle density. Without such
    a crossing (no opacified fluid in the volume) threshold 2 is the muscle mean plus four standard deviations.

    Args:
        mixture: the fitted mixture.
        grid: HU range scanned, in steps of 1 HU.

    Returns:
        ``(air_fat, muscle_fluid)`` in HU.
    """
    hu = np.arange(grid[0], grid[1] + 1.0, 1.0)
    dens = mixture.densities(hu)
    above_air = hu >= mixture.means[0]
    fat_wins = np.flatnonzero(above_air & (dens[1] > dens[0]))
    t1 = float(hu[fat_wins[0]]) if len(fat_wins) else float(mixture.means[0] + 3 * mixture.stds[0])
    above_muscle = hu >= mixture.means[2]
    fluid_wins = np.flatnonzero(above_muscle & (dens[3] > dens[2]))
    t2 = float(hu[fluid_wins[0]]) if len(fluid_wins) else float(mixture.means[2] + 4 * mixture.stds[2])
    return t1, t2


def body_mask(hu: np.ndarray, air_threshold: float) -> np.ndarray:
    """The body: non-air voxels with their holes filled slice by slice, largest 3D component."""
    tissue = hu > air_threshold
    filled = np.stack([ndimage.binary_fill_holes(tissue[..., z]) for z in range(hu.shape[-1])], -1)
    labels, n = ndimage.label(filled)
    if n == 0:
        return filled
    sizes = ndimage.sum(filled, labels, range(1, n + 1))
    return labels == (int(np.argmax(sizes)) + 1)


def _circularity(region: np.ndarray) -> float:
    from skimage.measure import perimeter

    area = float(region.sum())
    per = float(perimeter(region))
    return 4.0 * np.pi * area / max(per, 1.0) ** 2


def detect_rectum(
    hu: np.ndarray,
    air_threshold: float,
    search_fraction: float = 0.15,
    min_slices: int = 3,
    min_area: int = 6,
    min_circularity: float = 0.5,
    source: Any = None,
) -> tuple[int, np.ndarray]:
    """The rectum: the disk-like air region inside the body in the lowest slices.

    Slices are searched from the lowest (z = 0) up over ``search_fraction`` of the volume (at least
    ``min_slices``); in each, air components inside the body of at least ``min_area`` pixels and a circularity
    ``4 pi area / perimeter^2`` of at least ``min_circularity`` are candidates, and the largest candidate of the
    lowest slice that has one is the rectum.

    Args:
        hu: volume in HU, axes (x, y, z) with z = 0 the lowest (inferior) slice.
        air_threshold: HU below which a voxel is air (:func:`em_thresholds`' first value).
        search_fraction: fraction of the slices searched.
        min_slices: minimum number of slices searched.
        min_area: smallest rectum cross-section in pixels.
        min_circularity: smallest circularity of a disk-like region.
        source: the volume's file, named in the error.

    Returns:
        ``(z, mask)``: the slice index and the rectum's 2D mask in it.

    Raises:
        RectumNotFoundError: no such region in the searched slices.
    """
    depth = hu.shape[-1]
    search = min(depth, max(min_slices, int(round(search_fraction * depth))))
    body = body_mask(hu[..., :search], air_threshold)
    for z in range(search):
        air = (hu[..., z] < air_threshold) & body[..., z]
        labels, n = ndimage.label(air)
        best, best_area = None, 0
        for k in range(1, n + 1):
            region = labels == k
            area = int(region.sum())
            if area >= min_area and area > best_area and _circularity(region) >= min_circularity:
                best, best_area = region, area
        if best is not None:
            return z, best
    where = f"{source}: " if source is not None else ""
    raise RectumNotFoundError(
        f"{where}rectum not found: no disk-like air region (>= {min_area} pixels, circularity >= {min_circularity}) "
        f"inside the body in the lowest {search} slices (below {air_threshold:.0f} HU); the sequential segmentation "
        "starts at the rectum, so check that the volume covers the rectum and that z = 0 is the inferior end"
    )
