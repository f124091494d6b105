from __future__ import annotations

import pytest
import torch

from common.networks import ENet


def test_shape_parameters_and_torchscript_parity():
    torch.manual_seed(0)
    net = ENet(in_channels=1, out_channels=4).eval()
    assert 300_000 < sum(p.numel() for p in net.parameters()) < 420_000  # the paper: ~0.36 M
    x = torch.rand(2, 1, 64, 48)
    with torch.no_grad():
        out = net(x)
        assert out.shape == (2, 4, 64, 48)
        assert torch.allclose(torch.jit.script(net)(x), out, atol=1e-5)


def test_gradient_reaches_the_first_layer():
    net = ENet(in_channels=2, out_channels=3)
    net(torch.rand(2, 2, 32, 32)).sum().backward()
    assert net.initial.conv.weight.grad is not None and net.initial.conv.weight.grad.abs().sum() > 0


def test_errors():
    with pytest.raises(ValueError, match="divisible by 8"):
        ENet()(torch.zeros(1, 1, 36, 32))
    with pytest.raises(ValueError, match="in_channels < 16"):
        ENet(in_channels=16)
