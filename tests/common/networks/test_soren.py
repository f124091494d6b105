"""SOREN neck (common/networks/soren.py)."""

from __future__ import annotations

import pytest
import torch

from common.networks import SOREN, ResidualBlock, SpatialAttention


def test_soren_enhances_p3_p4_and_passes_the_rest():
    neck = SOREN(16)
    features = [torch.randn(1, 16, s, s) for s in (32, 16, 8, 4, 2)]
    out = neck(features)
    assert [o.shape for o in out] == [f.shape for f in features]
    assert not torch.equal(out[0], features[0]) and not torch.equal(out[1], features[1])
    assert all(torch.equal(o, f) for o, f in zip(out[2:], features[2:]))
    assert len(neck.plain_nets[0]) == 4 and isinstance(neck.plain_nets[0][0], ResidualBlock)
    with pytest.raises(ValueError):
        SOREN(16, num_blocks=0)


def test_attention_is_a_map_in_unit_range_and_subtraction_removes_shared_context():
    attention = SpatialAttention(8)
    a = attention(torch.randn(2, 8, 5, 5))
    assert a.shape == (2, 1, 5, 5) and (a >= 0).all() and (a <= 1).all()
    neck = SOREN(8, enhanced_levels=(0,))
    neck.low_attention[0] = neck.top_attention[0]  # the same attention on the same content cancels out
    p3 = torch.randn(1, 8, 8, 8)
    small = torch.relu(neck.low_attention[0](p3) - neck.top_attention[0](p3)) * p3
    assert torch.count_nonzero(small) == 0
