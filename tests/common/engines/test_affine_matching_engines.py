from __future__ import annotations

import numpy as np
import pytest
import torch

from common.engines import (
    IntensityFeatures,
    MatcherInferer,
    PreAlignedRegistrationBatch,
    RotationSearchInferer,
    SyntheticHomographyBatch,
    global_ncc,
    perceptual_search,
    random_homography,
    ransac_affine,
)
from common.networks import AffineMatchingNet


def _blobs(size=32):
    img = torch.zeros(1, 1, size, size)
    img[..., 4:14, 6:12] = 1.0
    img[..., 20:28, 18:30] = 0.5
    return img


def test_perceptual_search_finds_the_rotation():
    fixed = _blobs()
    moving = torch.rot90(fixed, 3, dims=(-2, -1))
    assert perceptual_search(moving, fixed, IntensityFeatures(8)).tolist() == [1]
    pair, targets = PreAlignedRegistrationBatch(IntensityFeatures(8))({"moving": moving, "fixed": fixed})
    assert torch.equal(targets["moving"], fixed) and pair.shape == (1, 2, 32, 32)


def test_synthetic_homography_batch_ground_truth():
    prep = SyntheticHomographyBatch(stride=8, seed=0)
    pair, targets = prep({"moving": _blobs(), "fixed": _blobs()})
    assert pair.shape == (2, 2, 32, 32) and targets["gt"].shape == (2, 16)
    gt = targets["gt"]
    assert ((gt >= -1) & (gt < 16)).all() and (gt >= 0).any()
    h = random_homography(np.random.default_rng(0), 64)
    assert h.shape == (3, 3) and abs(np.linalg.det(h)) > 0.3


def test_ransac_rejects_outliers_and_needs_three_points():
    rng = np.random.default_rng(0)
    a = np.array([[1.0, 0.1, 5.0], [-0.1, 0.95, -2.0]])
    src = rng.uniform(0, 100, (40, 2))
    dst = src @ a[:, :2].T + a[:, 2]
    dst[:8] += rng.uniform(30, 60, (8, 2))
    est, inliers = ransac_affine(src, dst, np.ones(40), threshold=2.0, iterations=200)
    assert np.allclose(est, a, atol=1e-3) and inliers[8:].all() and not inliers[:8].any()
    with pytest.raises(ValueError):
        ransac_affine(src[:2], dst[:2], np.ones(2), 2.0)


def test_global_ncc():
    a = torch.rand(8, 8)
    assert global_ncc(a, a) == pytest.approx(1.0) and global_ncc(a, -a) == pytest.approx(-1.0)


def test_inferers_shapes_and_identity_fallback():
    torch.manual_seed(0)
    net = AffineMatchingNet(dim=16, layers=1, heads=2, width=4, threshold=1.1).eval()
    x = torch.cat([_blobs(), _blobs()], 1)
    assert MatcherInferer()(x, net).shape == (1, 16, 16)
    with pytest.warns(UserWarning, match="identity"):
        out = RotationSearchInferer()(x, net)
    assert torch.equal(out, torch.tensor([[1.0, 0, 0, 0, 1.0, 0]]))
    net.threshold = 0.0
    out = RotationSearchInferer(iterations=20)(x, net)
    assert out.shape == (1, 6) and torch.isfinite(out).all()


class _ShiftedMatches(torch.nn.Module):
    """A matcher stub whose every match says "shift by +3 px in x": a confident but wrong fit for aligned pairs."""

    def __init__(self):
        super().__init__()
        self.matcher = torch.nn.Module()
        self.matcher.stride = 8

    def matches(self, x):
        grid = torch.stack(torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="xy"), -1).reshape(-1, 2) * 8
        src = grid.unsqueeze(0).expand(x.shape[0], -1, -1) + 3.5
        return src, src + torch.tensor([3.0, 0.0]), torch.ones(x.shape[0], src.shape[1])


def test_rotation_search_keeps_an_aligned_pair_when_every_fit_is_worse():
    x = torch.cat([_blobs(), _blobs()], 1)  # already aligned
    shifted = RotationSearchInferer(iterations=20, identity_candidate=False)(x, _ShiftedMatches())
    assert shifted[0, 2].item() == pytest.approx(3.0, abs=1e-3)  # without the safeguard the wrong fit wins
    kept = RotationSearchInferer(iterations=20)(x, _ShiftedMatches())
    assert torch.equal(kept, torch.tensor([[1.0, 0, 0, 0, 1.0, 0]]))
