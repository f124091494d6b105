from __future__ import annotations

import math

import pytest
import torch

from common.networks import (
    AffineMatchingNet,
    AttentionLayer,
    CoarseBackbone,
    CoarseMatcher,
    coarse_cell_centres,
    mutual_nearest_mask,
    sine_positional_encoding,
    soft_points,
    weighted_affine_dlt,
)


def test_backbone_and_positional_encoding_shapes():
    assert CoarseBackbone(1, 32, 8)(torch.rand(2, 1, 64, 48)).shape == (2, 32, 8, 6)
    pe = sine_positional_encoding(16, 3, 5, torch.device("cpu"))
    assert pe.shape == (16, 3, 5)
    assert not torch.equal(pe[:, 0, 0], pe[:, 0, 1]) and not torch.equal(pe[:, 0, 0], pe[:, 1, 0])


def test_attention_layer_cross_uses_the_source():
    torch.manual_seed(0)
    layer = AttentionLayer(16, 4)
    x, a, b = torch.rand(1, 5, 16), torch.rand(1, 7, 16), torch.rand(1, 7, 16)
    assert layer(x, a).shape == (1, 5, 16)
    assert not torch.allclose(layer(x, a), layer(x, b))


def test_matcher_confidence_is_a_dual_softmax():
    torch.manual_seed(0)
    conf = CoarseMatcher(dim=16, layers=1, heads=2, width=4)(torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 40))
    assert conf.shape == (2, 16, 20)
    assert (conf >= 0).all() and (conf.sum(2) <= 1 + 1e-5).all() and (conf.sum(1) <= 1 + 1e-5).all()
    with pytest.raises(ValueError):
        CoarseMatcher(dim=18)


def test_mutual_nearest_mask():
    conf = torch.tensor([[[0.9, 0.05], [0.6, 0.3]]])
    mask = mutual_nearest_mask(conf, 0.2)
    assert mask.tolist() == [[[True, False], [False, False]]]  # row 1's best (col 0) prefers row 0
    assert not mutual_nearest_mask(conf, 0.95).any()


def test_cell_centres_and_soft_points():
    xy = coarse_cell_centres(16, 24, 8, torch.device("cpu"))
    assert xy.shape == (6, 2) and xy[0].tolist() == [3.5, 3.5] and xy[-1].tolist() == [19.5, 11.5]
    conf = torch.zeros(1, 1, 6)
    conf[0, 0, 1], conf[0, 0, 2] = 0.5, 0.5  # half-way between cells 1 and 2
    conf[0, 0, 5] = 0.4  # outside the 3x3 window? cell 5 is adjacent diagonally: inside with radius 1
    pts = soft_points(conf, xy, 8, radius=0)
    assert torch.allclose(pts, xy[1].view(1, 1, 2))  # radius 0: the best cell only
    pts = soft_points(conf[:, :, :3], xy[:3], 8, radius=1)
    assert torch.allclose(pts[0, 0], torch.tensor([15.5, 3.5]))


def test_weighted_dlt_recovers_an_affine_and_ignores_zero_weights():
    torch.manual_seed(0)
    a = torch.tensor([[0.9, -0.3, 12.0], [0.25, 1.1, -4.0]], dtype=torch.float64)
    src = torch.rand(1, 30, 2, dtype=torch.float64) * 200
    dst = src @ a[:, :2].T + a[:, 2]
    w = torch.rand(1, 30, dtype=torch.float64)
    dst_bad = dst.clone()
    dst_bad[0, :5] += 50.0
    w[0, :5] = 0.0  # outliers with zero weight
    est = weighted_affine_dlt(src, dst_bad, w)[0]
    assert torch.allclose(est, a, atol=1e-3)
    src.requires_grad_(True)
    weighted_affine_dlt(src, dst, torch.ones(1, 30, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(src.grad).all()


def test_affine_net_identity_fallback_and_script_parity():
    torch.manual_seed(0)
    net = AffineMatchingNet(dim=16, layers=1, heads=2, threshold=1.1, width=4).eval()  # no match can pass
    x = torch.rand(2, 2, 32, 32)
    out = net(x)
    assert out.shape == (2, 6) and torch.equal(out, torch.tensor([[1.0, 0, 0, 0, 1, 0]] * 2))
    net.threshold = 0.0
    scripted = torch.jit.script(net)
    assert torch.allclose(net(x), scripted(x), atol=1e-4)
    src, dst, w = net.matches(x)
    assert src.shape == dst.shape == (2, 16, 2) and w.shape == (2, 16)


def test_affine_net_trains_without_non_finite_gradients():
    torch.manual_seed(0)
    net = AffineMatchingNet(dim=16, layers=1, heads=2, threshold=0.0, width=4)
    x = torch.rand(2, 2, 32, 32)
    net(x).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    assert math.isfinite(float(net(x).sum()))
