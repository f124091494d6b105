from __future__ import annotations

import pytest
import torch

from common.networks import IEWADWTDown, SFRSegNet


@pytest.mark.parametrize("pooling", ["iewa_dwt", "max", "avg"])
def test_shapes_scripting_and_gradients(pooling: str):
    torch.manual_seed(0)
    net = SFRSegNet(pooling=pooling, features=(4, 8, 16))
    x = torch.rand(2, 3, 32, 32)
    net(x).mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.eval()
    with torch.no_grad():
        assert torch.allclose(torch.jit.script(net)(x), net(x), atol=1e-5)
    assert net(x).shape == (2, 1, 32, 32)


def test_iewa_dwt_is_the_pooling_and_adds_no_parameters():
    sfrseg, unet = SFRSegNet(), SFRSegNet(pooling="max")
    assert sum(p.numel() for p in sfrseg.parameters()) == sum(p.numel() for p in unet.parameters())
    assert sum(isinstance(m, IEWADWTDown) for m in sfrseg.modules()) == 4


def test_errors():
    with pytest.raises(ValueError, match="divisible by 16"):
        SFRSegNet()(torch.zeros(1, 3, 40, 40))
    with pytest.raises(ValueError, match="pooling must be one of"):
        SFRSegNet(pooling="stochastic")
    with pytest.raises(ValueError, match="features"):
        SFRSegNet(features=(16,))
