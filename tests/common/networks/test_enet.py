from __future__ import annotations

import pytest
import torch

from common.networks import ENet


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny inputs: one intra-op thread is faster than two on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_output_shape_and_parameter_count():
    net = ENet(in_channels=1, out_channels=4).eval()
    n_params = sum(p.numel() for p in net.parameters())
    assert 300_000 < n_params < 420_000  # the paper: about 0.36 M
    with torch.no_grad():
        assert net(torch.rand(2, 1, 64, 48)).shape == (2, 4, 64, 48)
    assert ENet(in_channels=3, out_channels=7).eval()(torch.rand(1, 3, 16, 24)).shape == (1, 7, 16, 24)


def test_torchscript_matches_eager_in_eval_mode():
    torch.manual_seed(0)
    net = ENet(in_channels=2, out_channels=4)
    # make batch-norm statistics non-trivial so that eval mode is really tested
    with torch.no_grad():
        net.train()(torch.rand(2, 2, 32, 32) * 3)
    net.eval()
    scripted = torch.jit.script(net)
    x = torch.randn(2, 2, 40, 32)
    with torch.no_grad():
        eager, script = net(x), scripted(x)
    assert eager.shape == (2, 4, 40, 32)
    assert torch.allclose(script, eager, atol=1e-5)
    with pytest.raises(Exception, match="divisible by 8"):
        scripted(torch.zeros(1, 2, 36, 32))


def test_gradient_reaches_the_first_layer():
    torch.manual_seed(0)
    net = ENet(in_channels=1, out_channels=4)
    net(torch.rand(2, 1, 32, 32)).square().mean().backward()
    grad = net.initial.conv.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_errors():
    net = ENet()
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.zeros(1, 1, 36, 32))
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.zeros(1, 1, 32, 20))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        net(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        net(torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="in_channels < 16"):
        ENet(in_channels=16)
    with pytest.raises(ValueError, match="out_channels"):
        ENet(out_channels=0)
    with pytest.raises(ValueError, match="dropout"):
        ENet(dropout=1.0)


def test_up_bottleneck_unpools_as_max_unpool2d_and_enet_exports_to_onnx(tmp_path):
    import torch.nn.functional as F

    from common.deployment import export_onnx, onnx_outputs, onnx_session
    from common.networks.enet import _UpBottleneck

    torch.manual_seed(0)
    up = _UpBottleneck(16, 8, dropout=0.0).eval()
    _, indices = F.max_pool2d_with_indices(torch.randn(2, 8, 12, 10), kernel_size=2, stride=2)
    x = torch.randn(2, 16, 6, 5)
    with torch.no_grad():
        expected = up.act(F.max_unpool2d(up.shortcut(x), indices, kernel_size=2, stride=2) + up.branch(x))
        torch.testing.assert_close(up(x, indices), expected, atol=0.0, rtol=0.0)
    net = ENet(1, 4).eval()
    export_onnx(net, torch.rand(1, 1, 64, 64), tmp_path / "enet.onnx")
    x = torch.rand(2, 1, 64, 64)
    (deployed,) = onnx_outputs(onnx_session(tmp_path / "enet.onnx", threads=1), x)
    with torch.no_grad():
        torch.testing.assert_close(deployed, net(x), atol=1e-4, rtol=1e-4)
