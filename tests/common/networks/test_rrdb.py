"""Tests of common.networks.rrdb: the ESRGAN-style generator of the rVTT bundle."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from common.networks import ResidualDenseBlock, ResidualInResidualDenseBlock, RRDBGenerator, upsampling_stages


@pytest.mark.parametrize(("scale", "stages"), [(2, [2]), (4, [2, 2]), (9, [3, 3]), (16, [2, 2, 2, 2]), ("6", [3, 2]),
                                               (8.0, [2, 2, 2])])  # fmt: skip
def test_upsampling_stages(scale, stages):
    assert upsampling_stages(scale) == stages


@pytest.mark.parametrize(("scale", "words"), [(1, "> 1"), (0.5, "> 1"), ("four", "number"), (None, "number"),
                                              (2.5, "integer"), (10, "2s and 3s")])  # fmt: skip
def test_upsampling_stages_rejects(scale, words):
    with pytest.raises(ValueError, match=words):
        upsampling_stages(scale)


@pytest.mark.parametrize("scale", [4, 9, 16])
def test_generator_output_shape_per_paper_scale(scale):
    net = RRDBGenerator(scale=scale, channels=8, growth=4, num_blocks=1).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 5, 6))
    assert out.shape == (2, 3, 5 * scale, 6 * scale)


def test_blocks_keep_shape_and_are_residual():
    x = torch.rand(1, 8, 6, 6)
    rdb = ResidualDenseBlock(8, 4)
    assert rdb(x).shape == x.shape
    rrdb = ResidualInResidualDenseBlock(8, 4, res_scale=0.0)
    assert torch.equal(rrdb(x), x)  # zero residual scaling: identity


def test_bicubic_skip_starts_at_bicubic_and_scripts():
    net = RRDBGenerator(scale=4, channels=8, growth=4, num_blocks=1, bicubic_skip=True).eval()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        expected = F.interpolate(x, size=[32, 32], mode="bicubic", align_corners=False)
        assert torch.allclose(net(x), expected, atol=1e-6)
        scripted = torch.jit.script(net)
        assert torch.allclose(scripted(x), net(x), atol=1e-5)
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        RRDBGenerator(in_channels=1, out_channels=3, bicubic_skip=True)
    with pytest.raises(ValueError, match="positive"):
        RRDBGenerator(channels=0)


def test_generator_learns_to_fit():
    torch.manual_seed(0)
    net = RRDBGenerator(scale=2, channels=8, growth=4, num_blocks=1)
    hr = torch.rand(2, 3, 8, 8)
    lr = F.avg_pool2d(hr, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = F.l1_loss(net(lr), hr)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.7 * first
