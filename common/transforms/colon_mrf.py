"""MRF-based initial labelling of the colon in CT colonography (Harb et al., ICPR 2024, Algorithm 1).

The pipeline, each step its own function so that it can be reused and tested alone:

1.-3. :func:`common.colon_ct_ops.fit_hu_mixture` (EM fit of the HU histogram),
   :func:`common.colon_ct_ops.em_thresholds` (air/fat and muscle/fluid thresholds: voxels below the first or above
   the second are the candidate lumen ``O_EM``) and :func:`common.colon_ct_ops.detect_rectum` (the disk-like air
   region in the lowest slices). They live in :mod:`common.colon_ct_ops` because the colon CT data check runs them
   too.
4. :func:`grow_from_rectum`: region growing (3D connectivity) from the rectum inside ``O_EM`` eroded by one voxel,
   so that a small-bowel loop touching the colon through a thin bridge is not reached, then dilated back inside
   ``O_EM`` (``O_RG``).
5. :func:`graph_cut_refine`: a binary graph cut (PyMaxflow) of Eq. 1, unary terms from the mixture's lumen
   posterior, Potts pairwise terms, restricted to a band around ``O_RG`` (``O_GC``), then slice-wise hole filling.

:func:`mrf_initial_labels` runs all steps. :class:`ColonInitialLabelling` (and its dictionary twin) turns a HU volume
into the three channels the episode network's inference reads: the windowed image, the MRF mask and the rectum
seed.
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

from ..colon_ct_ops import HUMixture, body_mask, detect_rectum, em_thresholds, fit_hu_mixture

__all__ = [
    "HU_WINDOW",
    "ColonInitialLabelling",
    "ColonInitialLabellingd",
    "MRFLabelling",
    "graph_cut_refine",
    "grow_from_rectum",
    "mrf_initial_labels",
    "window_hu",
]

HU_WINDOW: tuple[float, float] = (-1024.0, 1024.0)
"""HU range mapped to [0, 1] for the network: air lumen and opacified fluid both stay distinct from tissue."""


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
        self,
        keys: KeysCollection,
        window: Sequence[float] = HU_WINDOW,
        allow_missing_keys: bool = False,
        **mrf_kwargs: Any,
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
