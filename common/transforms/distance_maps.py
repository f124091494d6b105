"""Signed distance maps built from point annotations, for the boundary loss with intensity-aware distances.

Implements the distance maps of Breznik et al., "Leveraging Point Annotations in Segmentation Learning with Boundary
Loss" (ICPR 2024). For every foreground class ``k`` the annotated pixels ``P_k`` (small discs drawn around random
points, see :mod:`common.transforms.points`) define a signed map

``phi_k(x) = +D(x, P_k)`` for ``x`` outside ``P_k`` and ``phi_k(x) = -D(x, complement of P_k)`` inside ``P_k``,

so the map is negative inside the annotation and positive outside. ``D`` is one of four distances
(:data:`DISTANCE_KINDS`):

* ``"euclidean"``: exact Euclidean distance transform (:func:`scipy.ndimage.distance_transform_edt`), image-free.
* ``"geodesic"``: minimal path cost with the paper's weighted-L1 step cost ``(1 - lam) * |dI| + lam * c``
  (``c = 1`` for 4-neighbours, ``sqrt(2)`` for diagonals), ``lam = 0.5``.
* ``"intensity"``: the same with ``lam = 0`` (pure intensity path length).
* ``"mbd"``: minimum barrier distance, the minimum over paths of ``max(I) - min(I)`` along the path.

Intensities are min-max scaled to ``[0, 255]`` first (as in the paper), so a one-pixel step and one grey level weigh
the same in the geodesic cost. Geodesic, intensity and MBD maps are computed with a vectorised raster-scan
approximation (FastGeodis-style for the path costs, Strand et al. 2013 for the MBD): each iteration runs four
directional sweeps (top→bottom, bottom→top, left→right, right→left) and each sweep updates a whole image line at
once from the three neighbours in the previous line (8-connectivity). The result is never below the exact distance
(every value is the cost of an actual path); with a few iterations it matches the exact geodesic distance on
ordinary images, and the raster MBD can exceed the exact MBD where the optimal barrier path winds back and forth.
Several seed masks can be processed in one call (stacked along a leading axis), which is how the per-class inside
and outside maps share the same numpy calls.

Only 2D images ``(H, W)`` are supported for now (the paper's 2D setting); 3D maps are not implemented.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import distance_transform_edt

from ..checks import check_foreground_classes

__all__ = [
    "DISTANCE_KINDS",
    "ABSENT_MODES",
    "scale_to_255",
    "euclidean_distance",
    "geodesic_distance",
    "minimum_barrier_distance",
    "signed_distance_map",
    "point_signed_distance_maps",
    "SignedDistanceMapd",
]

DISTANCE_KINDS: tuple[str, ...] = ("euclidean", "geodesic", "intensity", "mbd")
"""Allowed values of ``kind``."""

ABSENT_MODES: tuple[str, ...] = ("ones", "zeros")
"""Allowed values of ``absent`` (map used for a class without any annotated pixel in the slice)."""

_GEODESIC_LAMBDA = {"geodesic": 0.5, "intensity": 0.0}
_DIAGONAL = float(np.sqrt(2.0))


def _check_kind(kind: str) -> None:
    if kind not in DISTANCE_KINDS:
        raise ValueError(f"unknown distance kind {kind!r}; allowed values are {DISTANCE_KINDS}")


def _check_iterations(iterations: int) -> int:
    if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    return int(iterations)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"expected a 2D image (H, W) (3D is not supported yet), got shape {image.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError("image contains NaN or infinite values")
    return image


def _check_seeds(seeds: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """Return seeds as a boolean ``(N, H, W)`` stack and whether the input was a single ``(H, W)`` mask."""
    seeds = np.asarray(seeds)
    single = seeds.ndim == 2
    if single:
        seeds = seeds[None]
    if seeds.ndim != 3 or seeds.shape[1:] != shape:
        raise ValueError(
            f"seeds must have shape (H, W) or (N, H, W) with (H, W) = {shape} like the image, got {seeds.shape}"
        )
    return seeds.astype(bool), single


def scale_to_255(image: np.ndarray) -> np.ndarray:
    """Min-max scale an image to ``[0, 255]`` (float64), as the paper does before computing distances.

    Args:
        image: array of any shape with finite values.

    Returns:
        float64 array of the same shape; a constant image maps to zeros.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.size == 0:
        raise ValueError("cannot scale an empty image")
    lo, hi = float(image.min()), float(image.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("image contains NaN or infinite values")
    if hi <= lo:
        return np.zeros_like(image)
    return (image - lo) * (255.0 / (hi - lo))


def euclidean_distance(seeds: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance (in pixels) from every pixel to the nearest seed pixel.

    Args:
        seeds: boolean mask ``(H, W)`` or stack ``(N, H, W)``; each mask is handled separately.

    Returns:
        float64 array of the same shape, 0 on seeds; ``inf`` everywhere for a mask without seeds.
    """
    seeds = np.asarray(seeds).astype(bool)
    if seeds.ndim not in (2, 3):
        raise ValueError(f"seeds must have shape (H, W) or (N, H, W), got {seeds.shape}")
    if seeds.ndim == 3:
        return np.stack([euclidean_distance(s) for s in seeds]) if len(seeds) else np.zeros(seeds.shape)
    if not seeds.any():
        return np.full(seeds.shape, np.inf)
    return distance_transform_edt(~seeds).astype(np.float64)


def _oriented(array: np.ndarray, transpose: bool, flip: bool) -> np.ndarray:
    """View of the last two axes such that a top→bottom sweep of the view is the requested sweep."""
    if transpose:
        array = np.swapaxes(array, -1, -2)
    if flip:
        array = array[..., ::-1, :]
    return array


# (transpose, flip) for top→bottom, bottom→top, left→right, right→left.
_SWEEPS = ((False, False), (False, True), (True, False), (True, True))


def geodesic_distance(image: np.ndarray, seeds: np.ndarray, lam: float, iterations: int = 2) -> np.ndarray:
    """Raster-scan approximation of the geodesic distance with the paper's weighted-L1 step cost.

    The distance of a pixel is the minimal cost of an 8-connected path to any seed, where a step between
    neighbours ``p``, ``q`` costs ``(1 - lam) * |I_p - I_q| + lam * c`` with ``c = 1`` for 4-neighbours and
    ``sqrt(2)`` for diagonal neighbours. ``lam = 1`` gives the chamfer (spatial) distance, ``lam = 0`` the pure
    intensity distance. Note that the paper's ``lam`` is the reverse of FastGeodis' ``lamb``.

    Each iteration runs four directional passes (top→bottom, bottom→top, left→right, right→left); a pass walks the
    image line by line and relaxes a whole line at once from the three neighbours in the previous line. Every
    returned value is the cost of a real path, so it is never below the exact (Dijkstra) distance, and repeated
    iterations converge to it. Two iterations (FastGeodis' and the authors' setting) left a mean excess of about
    2 % on a noisy 128x128 phantom (below 0.5 % after 4 iterations, converged after about 10).

    Args:
        image: 2D intensity image ``(H, W)`` (use :func:`scale_to_255` first for the paper's convention).
        seeds: boolean seed mask ``(H, W)`` or a stack ``(N, H, W)`` of masks processed together.
        lam: weight of the spatial term, in ``[0, 1]``.
        iterations: number of four-pass iterations (>= 1).

    Returns:
        float64 distances with the shape of ``seeds``; 0 on seeds, ``inf`` for a mask without any seed.
    """
    image = _check_image(image)
    seeds, single = _check_seeds(seeds, image.shape)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    iterations = _check_iterations(iterations)
    n, h, w = seeds.shape
    # Padded distance stack: the one-pixel border stays +inf and stands for "outside the image".
    dist = np.full((n, h + 2, w + 2), np.inf)
    dist[:, 1:-1, 1:-1] = np.where(seeds, 0.0, np.inf)
    padded_image = np.pad(image, 1, mode="edge")
    step = np.array([_DIAGONAL, 1.0, _DIAGONAL]) * lam

    passes = []
    for transpose, flip in _SWEEPS:
        img = _oriented(padded_image, transpose, flip)
        # cost[d][r, j]: step from (r, j + d) to (r + 1, j + 1) in the oriented padded frame, d = 0, 1, 2.
        cost = (1.0 - lam) * np.abs(img[1:, 1:-1, None] - sliding_window_view(img[:-1], 3, axis=1)) + step
        passes.append((transpose, flip, [np.ascontiguousarray(cost[..., d]) for d in range(3)]))

    buffer = np.empty((n, max(h, w)))
    for _ in range(iterations):
        for transpose, flip, cost in passes:
            view = _oriented(dist, transpose, flip)
            # Transposed passes work on a contiguous copy so that every line is contiguous in memory.
            work = np.ascontiguousarray(view) if transpose else view
            tmp = buffer[:, : work.shape[2] - 2]
            for r in range(2, work.shape[1] - 1):
                previous, line = work[:, r - 1], work[:, r, 1:-1]
                for d, neighbours in enumerate((previous[:, :-2], previous[:, 1:-1], previous[:, 2:])):
                    np.add(neighbours, cost[d][r - 1], out=tmp)
                    np.minimum(line, tmp, out=line)
            if transpose:
                view[...] = work
    out = dist[:, 1:-1, 1:-1].copy()
    return out[0] if single else out


def minimum_barrier_distance(image: np.ndarray, seeds: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Raster-scan approximation of the minimum barrier distance (Strand et al. 2013).

    The MBD of a pixel is the minimum over 8-connected paths to a seed of ``max(I) - min(I)`` along the path. The
    raster scan carries, per pixel, the running maximum ``U`` and minimum ``L`` of its current best path; a
    neighbour ``y`` offers ``max(U_y, I_x) - min(L_y, I_x)`` to pixel ``x``. The sweep structure is the same as in
    :func:`geodesic_distance`. The result is an upper bound of the exact MBD (every value is the barrier of an
    actual path); it is exact when the best path is monotone enough for the sweeps (e.g. piecewise constant regions
    separated by barriers), and can be larger where the best path must wind back and forth. Unlike the geodesic
    scan, more iterations do not converge to the exact MBD. Measured on a 64x64 phantom quantised to 16 levels,
    against a brute-force exact MBD: equal on 99 % / 93 % / 6 % of pixels with noise sd 8 / 15 / 30 grey levels
    (mean excess 0.07 % / 0.7 % / 17 %). The authors use an exact priority-queue MBD instead.

    Args:
        image: 2D intensity image ``(H, W)``.
        seeds: boolean seed mask ``(H, W)`` or a stack ``(N, H, W)`` of masks processed together.
        iterations: number of four-pass iterations (>= 1).

    Returns:
        float64 distances with the shape of ``seeds``; 0 on seeds, ``inf`` for a mask without any seed.
    """
    image = _check_image(image)
    seeds, single = _check_seeds(seeds, image.shape)
    iterations = _check_iterations(iterations)
    n, h, w = seeds.shape
    # Per pixel, the running maximum U and the negated running minimum -L of its current best path, stacked as
    # bounds[0] and bounds[1]; the barrier is U - L = bounds[0] + bounds[1]. Storing -L lets one np.maximum update
    # both bounds. Unreached pixels and the one-pixel border hold +inf in both, i.e. an infinite barrier.
    bounds = np.full((2, n, h + 2, w + 2), np.inf)
    bounds[0, :, 1:-1, 1:-1] = np.where(seeds, image, np.inf)
    bounds[1, :, 1:-1, 1:-1] = np.where(seeds, -image, np.inf)
    values = np.pad(np.stack([image, -image]), ((0, 0), (1, 1), (1, 1)), mode="edge")
    size = max(h, w)
    bounds_tmp, barrier_tmp = np.empty((2, n, size)), np.empty((n, size))
    current, better = np.empty((n, size)), np.empty((n, size), dtype=bool)

    for _ in range(iterations):
        for transpose, flip in _SWEEPS:
            view = _oriented(bounds, transpose, flip)
            work = np.ascontiguousarray(view) if transpose else view
            vals = _oriented(values, transpose, flip)
            m = work.shape[3] - 2
            cand, barrier, cur, mask = bounds_tmp[:, :, :m], barrier_tmp[:, :m], current[:, :m], better[:, :m]
            for r in range(2, work.shape[2] - 1):
                value = vals[:, None, r, 1:-1]
                previous, line = work[:, :, r - 1], work[:, :, r, 1:-1]
                np.add(line[0], line[1], out=cur)
                for neighbours in (previous[:, :, :-2], previous[:, :, 1:-1], previous[:, :, 2:]):
                    np.maximum(neighbours, value, out=cand)  # (max(U_y, I_x), -min(L_y, I_x))
                    np.add(cand[0], cand[1], out=barrier)
                    np.less(barrier, cur, out=mask)
                    np.copyto(line, cand, where=mask)
                    np.copyto(cur, barrier, where=mask)
            if transpose:
                view[...] = work
    out = bounds[0, :, 1:-1, 1:-1] + bounds[1, :, 1:-1, 1:-1]
    return out[0] if single else out


def _distances(image: np.ndarray, seeds: np.ndarray, kind: str, lam: float, iterations: int) -> np.ndarray:
    """Distance of ``kind`` from a seed stack ``(N, H, W)`` on an already scaled image."""
    if kind == "euclidean":
        return euclidean_distance(seeds)
    if kind == "mbd":
        return minimum_barrier_distance(image, seeds, iterations)
    return geodesic_distance(image, seeds, lam, iterations)


def _signed(regions: np.ndarray, image: np.ndarray, kind: str, lam: float, iterations: int) -> np.ndarray:
    """Signed maps for a stack of regions ``(N, H, W)``: outside and inside distances in one stacked call."""
    seeds = np.concatenate([regions, ~regions])
    dist = _distances(image, seeds, kind, lam, iterations)
    n = len(regions)
    outside, inside = dist[:n], dist[n:]
    phi = np.where(regions, -inside, outside)
    phi[~np.isfinite(phi)] = 0.0  # distance to an empty set (region empty or covering the whole image)
    return phi


def signed_distance_map(
    image: np.ndarray, region: np.ndarray, kind: str, lam: float = 0.5, iterations: int = 2
) -> np.ndarray:
    """Signed distance map of one region: ``+D(x, region)`` outside, ``-D(x, complement)`` inside.

    The image is min-max scaled to ``[0, 255]`` first. For ``kind="geodesic"`` the spatial weight is ``lam``
    (paper: 0.5); ``kind="intensity"`` always uses ``lam = 0`` and ``"euclidean"``/``"mbd"`` ignore it.
    Where a distance is to an empty set (empty region, or a region covering the whole image) the map is 0.

    Args:
        image: 2D image ``(H, W)`` (ignored by ``"euclidean"`` apart from its shape).
        region: boolean mask ``(H, W)``.
        kind: one of :data:`DISTANCE_KINDS`.
        lam: spatial weight of the geodesic step cost, in ``[0, 1]``.
        iterations: raster-scan iterations for the geodesic, intensity and MBD distances.

    Returns:
        float64 map ``(H, W)``, negative inside the region, positive outside (MBD can be 0 outside).
    """
    _check_kind(kind)
    image = _check_image(image)
    region = np.asarray(region)
    if region.shape != image.shape:
        raise ValueError(f"region shape {region.shape} does not match image shape {image.shape}")
    if kind == "intensity":
        lam = 0.0
    return _signed(region.astype(bool)[None], scale_to_255(image), kind, lam, iterations)[0]


def point_signed_distance_maps(
    image: np.ndarray,
    points: np.ndarray,
    classes: Sequence[int],
    kind: str,
    absent: str = "ones",
    normalise: bool = True,
    iterations: int = 2,
) -> np.ndarray:
    """Per-class signed distance maps from point annotations, the boundary-loss targets of Breznik et al.

    For every class ``k`` in ``classes`` the annotated region is ``points == k``; its signed map is
    ``+D(x, P_k)`` outside and ``-D(x, complement)`` inside (see :func:`signed_distance_map`). All classes' inside
    and outside distances are computed in one stacked call. The geodesic kind uses the paper's ``lam = 0.5``.

    Args:
        image: 2D image ``(H, W)``; min-max scaled to ``[0, 255]`` per slice before computing distances.
        points: integer map ``(H, W)``; 0 = not annotated, ``k`` = annotated pixel of class ``k``.
        classes: foreground class indices, one output map each (in this order).
        kind: one of :data:`DISTANCE_KINDS`.
        absent: map for a class without annotated pixels in the slice: ``"ones"`` (paper's choice; a positive
            map pushes that class's probability down everywhere) or ``"zeros"`` (no boundary-loss signal).
        normalise: divide each class map by its maximum absolute value so it lies in ``[-1, 1]``. The raw ranges
            differ by orders of magnitude between kinds (Euclidean: pixels, intensity distance: summed grey
            levels, MBD: at most 255), so normalising keeps the boundary-loss weight ``alpha`` meaningful across
            kinds and slices (the authors normalise their geodesic maps the same way). Absent-class maps are
            already in ``[-1, 1]`` and are not rescaled.
        iterations: raster-scan iterations for the geodesic, intensity and MBD distances.

    Returns:
        float32 array ``(len(classes), H, W)``.
    """
    _check_kind(kind)
    if absent not in ABSENT_MODES:
        raise ValueError(f"unknown absent-class mode {absent!r}; allowed values are {ABSENT_MODES}")
    image = _check_image(image)
    points = np.asarray(points)
    if points.shape != image.shape:
        raise ValueError(f"points shape {points.shape} does not match image shape {image.shape}")
    classes = list(check_foreground_classes(classes))
    iterations = _check_iterations(iterations)

    regions = np.stack([points == c for c in classes])
    present = regions.any(axis=(1, 2))
    maps = np.full(regions.shape, 1.0 if absent == "ones" else 0.0)
    if present.any():
        lam = _GEODESIC_LAMBDA.get(kind, 0.5)
        phi = _signed(regions[present], scale_to_255(image), kind, lam, iterations)
        if normalise:
            scale = np.abs(phi).max(axis=(1, 2), keepdims=True)
            phi = phi / np.where(scale > 0, scale, 1.0)
        maps[present] = phi
    return maps.astype(np.float32)


class SignedDistanceMapd(MapTransform):
    """Dictionary transform adding per-class signed distance maps computed from point annotations.

    Reads a channel-first image ``(C, H, W)`` (channel 0 is used, e.g. the fat channel must be moved first) and a
    point map ``(1, H, W)`` (0 = not annotated, ``k`` = class ``k``), and writes a float32 tensor
    ``(len(classes), H, W)`` under ``output_key`` (a :class:`~monai.data.MetaTensor` carrying the image's
    metadata when the image is one). 2D only for now: 3D volumes ``(C, H, W, D)`` are rejected.

    Args:
        image_key: key of the image (this transform's ``keys``).
        points_key: key of the point annotation map.
        output_key: key receiving the distance maps.
        classes: foreground classes, one map each.
        kind: one of :data:`DISTANCE_KINDS`.
        absent: ``"ones"`` or ``"zeros"``, see :func:`point_signed_distance_maps`.
        normalise: scale each class map to ``[-1, 1]``.
        iterations: raster-scan iterations.
        allow_missing_keys: skip samples without the image or points instead of raising ``KeyError``.
    """

    dictionary_only = "draws the item's point annotations on the grid of the image at ``image_key``"

    def __init__(
        self,
        image_key: str = "image",
        points_key: str = "points",
        output_key: str = "distance",
        classes: Sequence[int] = (1, 2, 3),
        kind: str = "mbd",
        absent: str = "ones",
        normalise: bool = True,
        iterations: int = 2,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys=image_key, allow_missing_keys=allow_missing_keys)
        _check_kind(kind)
        if absent not in ABSENT_MODES:
            raise ValueError(f"unknown absent-class mode {absent!r}; allowed values are {ABSENT_MODES}")
        classes = tuple(int(c) for c in classes)
        if not classes or any(c <= 0 for c in classes):
            raise ValueError(f"classes must be a non-empty sequence of positive class indices, got {classes}")
        self.image_key = image_key
        self.points_key = points_key
        self.output_key = output_key
        self.classes = classes
        self.kind = kind
        self.absent = absent
        self.normalise = bool(normalise)
        self.iterations = _check_iterations(iterations)

    @staticmethod
    def _to_numpy(value: torch.Tensor | np.ndarray) -> np.ndarray:
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy()
        return np.asarray(value)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:  # noqa: D102
        d = dict(data)
        for key in self.key_iterator(d):
            if self.points_key not in d:
                if self.allow_missing_keys:
                    continue
                raise KeyError(f"SignedDistanceMapd needs the point annotations under '{self.points_key}'")
            image = d[key]
            image_np = self._to_numpy(image)
            points_np = self._to_numpy(d[self.points_key])
            if image_np.ndim != 3:
                raise ValueError(
                    f"SignedDistanceMapd supports 2D channel-first images (C, H, W) only, got shape {image_np.shape}"
                )
            if points_np.ndim != 3 or points_np.shape[0] != 1 or points_np.shape[1:] != image_np.shape[1:]:
                raise ValueError(
                    f"points must have shape (1, H, W) = (1, {image_np.shape[1]}, {image_np.shape[2]}), "
                    f"got {points_np.shape}"
                )
            points = np.rint(points_np[0]).astype(np.int64)
            maps = point_signed_distance_maps(
                image_np[0], points, self.classes, self.kind, self.absent, self.normalise, self.iterations
            )
            out = torch.from_numpy(maps)
            if isinstance(image, MetaTensor):
                out = MetaTensor(out, meta=copy.deepcopy(image.meta))
            d[self.output_key] = out
        return d
