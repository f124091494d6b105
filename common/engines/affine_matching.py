"""Engine pieces of feature-matching affine registration (histology): the synthetic-homography warm-up batches,
the training-time perceptual pre-alignment over the four 90-degree rotations, and the inference-time search (four
angles, RANSAC on the matches, NCC picks the winner, identity fallback).
"""  # noqa: D205

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.engines import PrepareBatch
from monai.inferers import Inferer

from common.networks.feature_matching import coarse_cell_centres, weighted_affine_dlt
from common.transforms.affine_histology import rotation90_affine, warp_affine

__all__ = [
    "IntensityFeatures",
    "perceptual_search",
    "PreAlignedRegistrationBatch",
    "random_homography",
    "SyntheticHomographyBatch",
    "MatcherInferer",
    "ransac_affine",
    "global_ncc",
    "RotationSearchInferer",
]


def _net(network: torch.nn.Module) -> torch.nn.Module:
    return network.module if hasattr(network, "module") else network


class IntensityFeatures:
    """Default pluggable feature extractor of the perceptual search: the image area-averaged to ``size x size``.

    Any callable mapping ``(B, 1, H, W)`` to ``(B, ...)`` features can replace it (for example a pretrained CNN's
    activations, the paper's perceptual features).
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size

    def __call__(self, image: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.adaptive_avg_pool2d(image, self.size).flatten(1)


def perceptual_search(
    moving: torch.Tensor, fixed: torch.Tensor, extractor: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> torch.Tensor:
    """Per item, the number ``k`` of 90-degree turns of ``moving`` whose features are closest (L2) to ``fixed``'s."""
    extractor = extractor or IntensityFeatures()
    with torch.no_grad():
        target = extractor(fixed)
        dists = torch.stack(
            [(extractor(torch.rot90(moving, k, dims=(-2, -1))) - target).pow(2).flatten(1).mean(1) for k in range(4)],
            1,
        )
    return dists.argmin(1)


class PreAlignedRegistrationBatch(PrepareBatch):
    """Fine-tuning batches: ``(pair, {"moving", "fixed"})`` with the moving image pre-rotated by the perceptual search.

    Args:
        feature_extractor: the pluggable extractor of :func:`perceptual_search` (default :class:`IntensityFeatures`).
        moving_key: moving canvas key.
        fixed_key: fixed canvas key.
    """

    def __init__(self, feature_extractor: Callable | None = None, moving_key: str = "moving", fixed_key: str = "fixed"):
        self.extractor = feature_extractor
        self.moving_key, self.fixed_key = moving_key, fixed_key

    def __call__(self, batchdata: Mapping[str, torch.Tensor], device: Any = None, non_blocking: bool = False,  # noqa: D102
                 **kwargs: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
        moving = torch.as_tensor(batchdata[self.moving_key]).to(device=device, non_blocking=non_blocking)
        fixed = torch.as_tensor(batchdata[self.fixed_key]).to(device=device, non_blocking=non_blocking)
        turns = perceptual_search(moving, fixed, self.extractor)
        moving = torch.stack([torch.rot90(m, int(k), dims=(-2, -1)) for m, k in zip(moving, turns)])
        return torch.cat([moving, fixed], 1), {"moving": moving, "fixed": fixed}


def random_homography(rng: np.random.Generator, size: int, max_angle: float = 25.0, max_perspective: float = 2e-4):
    """3x3 random homography about the image centre: rotation, anisotropic scale, shear, shift, mild perspective."""
    angle = np.deg2rad(rng.uniform(-max_angle, max_angle))
    c, s = np.cos(angle), np.sin(angle)
    lin = np.array([[c, -s], [s, c]]) @ np.diag(rng.uniform(0.85, 1.15, 2)) @ np.array([[1, rng.uniform(-0.1, 0.1)],
                                                                                       [0, 1]])  # fmt: skip
    centre = np.full(2, (size - 1) / 2.0)
    h = np.eye(3)
    h[:2, :2] = lin
    h[:2, 2] = centre - lin @ centre + rng.uniform(-0.08, 0.08, 2) * size
    h[2, :2] = rng.uniform(-max_perspective, max_perspective, 2)
    return h


class SyntheticHomographyBatch(PrepareBatch):
    """Warm-up batches: each canvas (moving and fixed alike) paired with its own random homographic warp.

    Returns ``(pair (2B, 2, H, W), {"gt": (2B, N)})``: the ground-truth target cell of each source coarse cell (-1 when
    it leaves the image or lies on background).

    Args:
        keys: canvases used as source images.
        stride: coarse cell size of the matcher.
        seed: seed of the homography generator (advanced at every batch).
        min_tissue: mean canvas intensity of a cell below which it is not supervised.
    """

    def __init__(self, keys: tuple[str, ...] = ("moving", "fixed"), stride: int = 8, seed: int = 0,
                 min_tissue: float = 0.05) -> None:  # fmt: skip
        self.keys, self.stride, self.min_tissue = tuple(keys), stride, min_tissue
        self.rng = np.random.default_rng(seed)

    def __call__(self, batchdata: Mapping[str, torch.Tensor], device: Any = None, non_blocking: bool = False,  # noqa: D102
                 **kwargs: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
        images = torch.cat([torch.as_tensor(batchdata[k]) for k in self.keys], 0).float()
        b, _, h, w = images.shape
        homs = [random_homography(self.rng, h) for _ in range(b)]
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")  # fmt: skip
        grids = []
        for hm in homs:
            inv = torch.as_tensor(np.linalg.inv(hm))
            p = torch.stack([xs, ys, torch.ones_like(xs)], -1) @ inv.T
            p = p[..., :2] / p[..., 2:]
            grids.append(torch.stack([2 * p[..., 0] / (w - 1) - 1, 2 * p[..., 1] / (h - 1) - 1], -1))
        warped = F.grid_sample(images, torch.stack(grids).float(), mode="bilinear", padding_mode="zeros",
                               align_corners=True)  # fmt: skip
        centres = coarse_cell_centres(h, w, self.stride, torch.device("cpu")).double()
        tissue = F.avg_pool2d(images, self.stride).flatten(1) > self.min_tissue  # (B, N)
        gw = w // self.stride
        gts = []
        for i, hm in enumerate(homs):
            q = torch.cat([centres, torch.ones(len(centres), 1, dtype=torch.float64)], 1) @ torch.as_tensor(hm).T
            q = q[:, :2] / q[:, 2:]
            col = torch.floor((q[:, 0] + 0.5) / self.stride).long()
            row = torch.floor((q[:, 1] + 0.5) / self.stride).long()
            inside = (col >= 0) & (col < gw) & (row >= 0) & (row < h // self.stride)
            gt = torch.where(inside & tissue[i], row * gw + col, torch.full_like(col, -1))
            gts.append(gt)
        pair = torch.cat([images, warped], 1).to(device=device, non_blocking=non_blocking)
        return pair, {"gt": torch.stack(gts).to(device=device)}


class MatcherInferer(Inferer):
    """Warm-up inferer: the coarse matcher's confidence matrix of ``(source, target)`` channels."""

    def __call__(self, inputs: torch.Tensor, network: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:  # noqa: D102
        return _net(network).matcher(inputs[:, 0:1], inputs[:, 1:2])


def _affine_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    a = np.hstack([src, np.ones((len(src), 1))])
    sol, *_ = np.linalg.lstsq(a, dst, rcond=None)
    m = sol.T
    return m if np.isfinite(m).all() and abs(np.linalg.det(m[:, :2])) > 1e-6 else None


def ransac_affine(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray, threshold: float, iterations: int = 300, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC over minimal 3-point affines; returns (2x3 affine refitted by the weighted DLT on the inliers, inliers).

    Raises:
        ValueError: with fewer than 3 correspondences.
    """
    n = len(src)
    if n < 3:
        raise ValueError(f"RANSAC needs at least 3 matches, got {n}")
    rng = np.random.default_rng(seed)
    best = np.ones(n, bool)
    if n > 3 and iterations > 0:
        # every hypothesis at once: 3 distinct points per row, the exact affine through them, inliers, weighted score
        idx = np.argpartition(rng.random((iterations, n)), 3, axis=1)[:, :3]
        design = np.concatenate([src[idx], np.ones((iterations, 3, 1))], axis=2)  # (I, 3, 3)
        valid = np.abs(np.linalg.det(design)) > 1e-6  # collinear triples fit no affine
        design[~valid] = np.eye(3)
        m = np.linalg.solve(design, dst[idx])  # (I, 3, 2): [x y 1] @ m = target
        err = np.linalg.norm(np.concatenate([src, np.ones((n, 1))], 1) @ m - dst[None], axis=2)  # (I, n)
        inliers = (err < threshold) & valid[:, None]
        scores = np.where(valid, inliers.astype(np.float64) @ weights, -1.0)
        if scores.max() >= 0:
            best = inliers[int(np.argmax(scores))]  # the first of equal scores, as a sequential search keeps
    if best.sum() < 3:
        best = np.ones(n, bool)
    affine = weighted_affine_dlt(
        torch.as_tensor(src[best])[None], torch.as_tensor(dst[best])[None], torch.as_tensor(weights[best])[None]
    )[0].numpy()
    if not np.isfinite(affine).all():
        affine = _affine_lstsq(src[best], dst[best])
        affine = np.array([[1.0, 0, 0], [0, 1.0, 0]]) if affine is None else affine
    return affine, best


def global_ncc(a: torch.Tensor, b: torch.Tensor) -> float:
    """Zero-normalised cross-correlation of two images."""
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12))


class RotationSearchInferer(Inferer):
    """Inference: for each of the four 90-degree rotations of the source, match, fit an affine by RANSAC on the
    matches, warp, and keep the rotation whose warped source has the highest NCC with the target.

    Returns ``(B, 6)`` source-to-target affines of the input grid. With ``identity_candidate`` the identity competes
    on the same NCC, so a pair that is already aligned better than any fit stays as it is (an unsupervised
    safeguard: no landmarks are involved). Falls back to the identity (with a warning) when no rotation yields at
    least ``min_matches`` matches.

    Args:
        ransac_threshold: inlier distance in coarse cells.
        iterations: RANSAC iterations.
        min_matches: fewest matches to fit an affine.
        seed: RANSAC seed.
        identity_candidate: score the unregistered pair too and keep it when its NCC is the highest.
    """  # noqa: D205

    def __init__(self, ransac_threshold: float = 1.0, iterations: int = 300, min_matches: int = 3, seed: int = 0,
                 identity_candidate: bool = True):  # fmt: skip
        self.ransac_threshold, self.iterations = ransac_threshold, iterations
        self.min_matches, self.seed = min_matches, seed
        self.identity_candidate = identity_candidate

    def __call__(self, inputs: torch.Tensor, network: torch.nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:  # noqa: D102
        net = _net(network)
        stride = net.matcher.stride
        inputs = inputs.as_subclass(torch.Tensor)  # a MetaTensor would route every op through __torch_function__
        out = []
        with torch.no_grad():
            for item in inputs:
                source, target = item[0:1], item[1:2]
                h, w = source.shape[-2:]
                best, best_ncc = None, -np.inf
                turns = [k for k in range(4) if torch.rot90(source, k, dims=(-2, -1)).shape == target.shape]
                # the rotations go through the matcher as one batch (one pass instead of four)
                pairs = [torch.cat([torch.rot90(source, k, dims=(-2, -1)), target], 0) for k in turns]
                all_src, all_dst, all_weights = net.matches(torch.stack(pairs)) if turns else (None, None, None)
                for i, k in enumerate(turns):
                    src_xy, dst_xy, weights = all_src[i], all_dst[i], all_weights[i]
                    keep = weights > 0
                    if int(keep.sum()) < self.min_matches:
                        continue
                    a, _ = ransac_affine(src_xy[keep].double().cpu().numpy(), dst_xy[keep].double().cpu().numpy(),
                                         weights[keep].double().cpu().numpy(), self.ransac_threshold * stride,
                                         self.iterations, self.seed)  # fmt: skip
                    full = np.vstack([a, [0, 0, 1]]) @ rotation90_affine(k, h, w)
                    if not np.isfinite(full).all() or abs(np.linalg.det(full[:2, :2])) < 1e-3:
                        continue  # degenerate fit (collinear inliers)
                    if np.linalg.cond(full[:2, :2]) > 1e6:
                        continue  # near-singular: its inverse (in warp_affine, in float32) would fail or explode
                    full_t = torch.as_tensor(full[:2].reshape(1, 6), dtype=item.dtype, device=item.device)
                    try:
                        score = global_ncc(warp_affine(source[None], full_t)[0], target)
                    except torch.linalg.LinAlgError:
                        continue
                    if score > best_ncc:
                        best, best_ncc = full_t[0], score
                identity = torch.tensor([1.0, 0, 0, 0, 1.0, 0], dtype=item.dtype, device=item.device)
                if best is None:
                    warnings.warn(f"fewer than {self.min_matches} matches at every rotation: using the identity",
                                  stacklevel=2)  # fmt: skip
                    best = identity
                elif self.identity_candidate and global_ncc(source, target) > best_ncc:
                    best = identity
                out.append(best)
        return torch.stack(out)
