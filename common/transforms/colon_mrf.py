"""MRF-based initial labelling of the colon in CT colonography (Harb et al., ICPR 2024, Algorithm 1).

The pipeline, each step its own function so that it can be reused and tested alone:

1. :func:`fit_hu_mixture`: the HU histogram of the volume, fitted by EM with four Gaussians (air, fat, muscle,
   opacified fluid) started at the authors' means (-950, -100, 100, 500 HU, std 400).
2. :func:`em_thresholds`: two thresholds, air/fat (first HU where the weighted fat density exceeds the air density)
   and muscle/fluid (first HU above the muscle mean where fluid exceeds muscle); voxels below the first or above the
   second are the candidate lumen ``O_EM``.
3. :func:`detect_rectum`: in the lowest slices, the disk-like air region inside the body (the rectum is the only
   air there); :class:`RectumNotFoundError` when there is none.
4. :func:`grow_from_rectum`: region growing (3D connectivity) from the rectum inside ``O_EM`` eroded by one voxel,
   so that a small-bowel loop touching the colon through a thin bridge is not reached, then dilated back inside
   ``O_EM`` (``O_RG``).
5. :func:`graph_cut_refine`: a binary graph cut (PyMaxflow) of Eq. 1, unary terms from the mixture's lumen
   posterior, Potts pairwise terms, restricted to a band around ``O_RG`` (``O_GC``), then slice-wise hole filling.

:func:`mrf_initial_labels` runs all steps. :class:`ColonInitialLabelling` (and its dictionary twin) turns a HU volume
into the three channels the episode network's inference reads: the windowed image, the MRF mask and the rectum
seed. :func:`dominant_superpixel_mask` gives the Felzenszwalb pseudo-mask of a colon-free slice.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from scipy import ndimage

from ..data.errors import DatasetError

__all__ = [
    "EM_INITIAL_MEANS",
    "EM_MEAN_RANGES",
    "HU_WINDOW",
    "ColonInitialLabelling",
    "ColonInitialLabellingd",
    "HUMixture",
    "MRFLabelling",
    "RectumNotFoundError",
    "body_mask",
    "detect_rectum",
    "dominant_superpixel_mask",
    "em_thresholds",
    "fit_hu_mixture",
    "graph_cut_refine",
    "grow_from_rectum",
    "mrf_initial_labels",
    "window_hu",
]

EM_INITIAL_MEANS: tuple[float, float, float, float] = (-950.0, -100.0, 100.0, 500.0)
"""Initial means (HU) of the air, fat, muscle and opacified-fluid Gaussians (the authors' code)."""
EM_MEAN_RANGES: tuple[tuple[float, float], ...] = ((-1100.0, -600.0), (-200.0, -50.0), (0.0, 150.0), (200.0, 1700.0))
"""HU interval each Gaussian's mean is kept in during EM (air, fat, muscle, opacified fluid)."""
HU_WINDOW: tuple[float, float] = (-1024.0, 1024.0)
"""HU range mapped to [0, 1] for the network: air lumen and opacified fluid both stay distinct from tissue."""


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


def grow_from_rectum(candidates: np.ndarray, seed: np.ndarray, erosion: int = 1) -> np.ndarray:
    """Region growing from the rectum inside the candidate lumen, with erosion against small-bowel leaks.

    Args:
        candidates: ``O_EM``, the voxels below the air/fat or above the muscle/fluid threshold (3D bool).
        seed: the rectum voxels (3D bool).
        erosion: erosion radius in voxels before growing (0 grows in ``O_EM`` itself).

    Returns:
        ``O_RG``: the connected component of the eroded candidates reached from the seed, dilated back by the same
        radius inside ``O_EM``.
    """
    candidates = np.asarray(candidates, bool)
    seed = np.asarray(seed, bool) & candidates
    structure = ndimage.generate_binary_structure(3, 1)
    core = ndimage.binary_erosion(candidates, structure, iterations=erosion) if erosion > 0 else candidates
    start = seed & core
    if not start.any():  # a rectum thinner than the erosion: grow from the seed itself
        start, core = seed, core | seed
    labels, _ = ndimage.label(core, structure)
    grown = np.isin(labels, np.unique(labels[start]))
    grown &= labels > 0
    if erosion > 0:
        grown = ndimage.binary_dilation(grown, structure, iterations=erosion, mask=candidates)
    return grown


def graph_cut_refine(
    hu: np.ndarray, mixture: HUMixture, grown: np.ndarray, band: int = 1, smoothness: float = 1.0
) -> np.ndarray:
    """Graph cut of Eq. 1 (unary + Potts pairwise energy) around the grown colon, with PyMaxflow.

    Unary costs are ``-log`` of the mixture's lumen / non-lumen posteriors; voxels further than ``band`` voxels
    from ``O_RG`` are background, and ``O_RG`` eroded by one voxel is lumen (hard constraints). Pairwise terms are
    ``smoothness`` for every pair of 6-neighbours with different labels. Holes are filled slice by slice.

    Args:
        hu: volume in HU.
        mixture: the fitted HU mixture.
        grown: ``O_RG`` from :func:`grow_from_rectum`.
        band: how far (voxels) the cut may extend ``O_RG``.
        smoothness: Potts weight.

    Returns:
        ``O_GC`` as a bool volume.
    """
    import maxflow

    grown = np.asarray(grown, bool)
    if not grown.any():
        return grown
    structure = ndimage.generate_binary_structure(3, 1)
    allowed = ndimage.binary_dilation(grown, structure, iterations=band) if band > 0 else grown
    certain = ndimage.binary_erosion(grown, structure)
    # the cut only concerns the allowed region's bounding box (plus a margin)
    lo = np.maximum(np.argwhere(allowed).min(0) - 1, 0)
    hi = np.minimum(np.argwhere(allowed).max(0) + 2, hu.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    posterior = np.clip(mixture.lumen_posterior(hu[box]), 1e-6, 1 - 1e-6)
    big = 1e6
    cost_lumen = np.where(allowed[box], -np.log(posterior), big)
    cost_background = np.where(certain[box], big, -np.log(1 - posterior))
    graph = maxflow.Graph[float]()
    nodes = graph.add_grid_nodes(posterior.shape)
    graph.add_grid_edges(nodes, weights=smoothness, symmetric=True)
    # a node ends in the sink segment (True: lumen) by cutting its source edge: that edge carries the lumen cost
    graph.add_grid_tedges(nodes, cost_lumen, cost_background)
    graph.maxflow()
    cut = np.zeros_like(grown)
    cut[box] = graph.get_grid_segments(nodes)
    return np.stack([ndimage.binary_fill_holes(cut[..., z]) for z in range(cut.shape[-1])], -1)


@dataclass
class MRFLabelling:
    """Every intermediate result of :func:`mrf_initial_labels`."""

    mixture: HUMixture
    thresholds: tuple[float, float]
    rectum_slice: int
    rectum: np.ndarray  # 3D bool, the rectum region in its slice
    candidates: np.ndarray  # O_EM
    grown: np.ndarray  # O_RG
    mask: np.ndarray  # O_GC, the initial colon mask
    extra: dict = field(default_factory=dict)


def mrf_initial_labels(
    hu: np.ndarray,
    source: Any = None,
    erosion: int = 1,
    band: int = 1,
    smoothness: float = 1.0,
    search_fraction: float = 0.15,
    min_circularity: float = 0.5,
) -> MRFLabelling:
    """The whole initial labelling: histogram EM, thresholds, rectum, region growing, graph cut.

    Args:
        hu: volume in HU, axes (x, y, z), z = 0 the inferior end.
        source: the volume's file, named in errors.
        erosion: region-growing erosion radius (voxels).
        band: graph-cut band around the grown region (voxels).
        smoothness: graph-cut Potts weight.
        search_fraction: fraction of the lowest slices searched for the rectum.
        min_circularity: disk-likeness of the rectum.

    Returns:
        An :class:`MRFLabelling`; ``mask`` is the initial colon mask.

    Raises:
        RectumNotFoundError: no rectum in the lowest slices.
        ValueError: ``hu`` is not a 3D volume of finite values.
    """
    hu = np.asarray(hu, dtype=np.float32)
    if hu.ndim != 3:
        raise ValueError(f"{source or 'volume'}: the MRF labelling needs a 3D volume, got shape {hu.shape}")
    mixture = fit_hu_mixture(hu)
    t1, t2 = em_thresholds(mixture)
    z, disk = detect_rectum(hu, t1, search_fraction=search_fraction, min_circularity=min_circularity, source=source)
    rectum = np.zeros(hu.shape, bool)
    rectum[..., z] = disk
    candidates = ((hu < t1) | (hu > t2)) & body_mask(hu, t1)
    grown = grow_from_rectum(candidates, rectum, erosion=erosion)
    mask = graph_cut_refine(hu, mixture, grown, band=band, smoothness=smoothness)
    return MRFLabelling(mixture, (t1, t2), z, rectum, candidates, grown, mask)


def window_hu(hu: np.ndarray | torch.Tensor, window: Sequence[float] = HU_WINDOW) -> np.ndarray | torch.Tensor:
    """HU clipped to ``window`` and scaled to [0, 1]."""
    low, high = float(window[0]), float(window[1])
    scaled = (hu - low) / (high - low)
    return scaled.clip(0.0, 1.0)


def dominant_superpixel_mask(
    image: np.ndarray, scale: float = 100.0, sigma: float = 0.5, min_size: int = 20, body: np.ndarray | None = None
) -> np.ndarray:
    """Pseudo-mask of a colon-free slice: its largest Felzenszwalb-Huttenlocher superpixel as foreground.

    Superpixels touching the image border (the air around the body) are left out, so the foreground is an
    anatomical region (soft tissue, liver, ...) as in the paper's unrelated slices.

    Args:
        image: 2D slice scaled to [0, 1].
        scale: Felzenszwalb's scale (higher, larger segments).
        sigma: its pre-smoothing.
        min_size: its smallest segment.
        body: optional 2D mask restricting the candidates.

    Returns:
        2D bool mask (all false when no inner superpixel exists).
    """
    from skimage.segmentation import felzenszwalb

    segments = felzenszwalb(np.asarray(image, dtype=np.float64), scale=scale, sigma=sigma, min_size=min_size)
    border = np.unique(np.concatenate([segments[0], segments[-1], segments[:, 0], segments[:, -1]]))
    labels, counts = np.unique(segments, return_counts=True)
    best, best_count = None, 0
    for label, count in zip(labels, counts):
        if label in border:
            continue
        region = segments == label
        if body is not None:
            count = int((region & body).sum())
        if count > best_count:
            best, best_count = label, count
    if best is None:
        return np.zeros(segments.shape, bool)
    return segments == best


class ColonInitialLabelling(Transform):
    """HU volume ``(1, X, Y, Z)`` -> ``(3, X, Y, Z)``: windowed image, MRF initial mask, rectum seed.

    The three channels are what :class:`common.engines.SequentialColonInferer` needs: it starts at the seed's slice
    with the MRF mask as the first support and feeds the MRF mask of every next slice as the query's guidance.

    Args:
        window: HU window scaled to [0, 1] for channel 0.
        **mrf_kwargs: options of :func:`mrf_initial_labels`.
    """

    def __init__(self, window: Sequence[float] = HU_WINDOW, **mrf_kwargs: Any) -> None:
        self.window = tuple(window)
        self.mrf_kwargs = mrf_kwargs

    def __call__(self, img: Any, source: Any = None) -> Any:
        """Label ``img``; ``source`` (its file) is named in errors. Returns a MetaTensor for a MetaTensor input."""
        array = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
        if array.ndim != 4 or array.shape[0] != 1:
            raise ValueError(f"{source or 'image'}: expected a (1, X, Y, Z) HU volume, got shape {array.shape}")
        labelling = mrf_initial_labels(array[0], source=source, **self.mrf_kwargs)
        channels = np.stack(
            [window_hu(array[0].astype(np.float32), self.window), labelling.mask, labelling.rectum]
        ).astype(np.float32)
        if isinstance(img, torch.Tensor):
            out = torch.as_tensor(channels)
            if hasattr(img, "meta"):
                from monai.data import MetaTensor

                out = MetaTensor(out, meta=dict(img.meta), applied_operations=list(img.applied_operations))
            return out
        return channels


class ColonInitialLabellingd(MapTransform):
    """Dictionary version of :class:`ColonInitialLabelling` (errors name the item's source file)."""

    def __init__(
        self, keys: KeysCollection, window: Sequence[float] = HU_WINDOW, allow_missing_keys: bool = False, **mrf_kwargs
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.labelling = ColonInitialLabelling(window, **mrf_kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Label every key's volume."""
        d = dict(data)
        for key in self.key_iterator(d):
            meta = getattr(d[key], "meta", {}) or {}
            d[key] = self.labelling(d[key], source=meta.get("filename_or_obj"))
        return d
