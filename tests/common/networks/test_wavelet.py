from __future__ import annotations

import pytest
import torch

from common.networks import IEWADWTDown, haar_dwt2d
from common.networks.wavelet import HAAR_BANDS, haar_kernel


def _corners(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Corners a (top-left), b (top-right), c (bottom-left), d (bottom-right) of every 2x2 block."""
    return x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]


def test_haar_bands_follow_the_documented_convention():
    x = torch.randn(2, 3, 6, 8, dtype=torch.float64)
    a, b, c, d = _corners(x)
    ll, lh, hl, hh = haar_dwt2d(x)
    assert ll.shape == (2, 3, 3, 4)
    torch.testing.assert_close(ll, (a + b + c + d) / 2)
    torch.testing.assert_close(lh, (a + b - c - d) / 2)
    torch.testing.assert_close(hl, (a - b + c - d) / 2)
    torch.testing.assert_close(hh, (a - b - c + d) / 2)
    torch.testing.assert_close(ll + lh + hl + hh, 2 * a)
    energy = sum((band**2).sum() for band in (ll, lh, hl, hh))
    torch.testing.assert_close(energy, (x**2).sum())  # orthonormal
    for band, coeffs in zip(HAAR_BANDS, (ll, lh, hl, hh)):  # kernels agree with the slicing implementation
        k = haar_kernel(band).double()
        torch.testing.assert_close(coeffs, k[0, 0] * a + k[0, 1] * b + k[1, 0] * c + k[1, 1] * d)


def test_iewa_dwt_closed_form():
    x = torch.randn(2, 5, 8, 6)
    a, b, c, d = _corners(x)
    out = IEWADWTDown()(x)
    assert out.shape == (2, 5, 4, 3)
    torch.testing.assert_close(out, (3 * a + b + c - d) / 2, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(IEWADWTDown("all")(x), 2 * a, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(IEWADWTDown(["LL"])(x), haar_dwt2d(x)[0], atol=1e-6, rtol=1e-6)


def test_concat_is_band_major_and_there_are_no_parameters():
    x = torch.randn(2, 3, 4, 4)
    out = IEWADWTDown(reduce="concat")(x)
    assert out.shape == (2, 9, 2, 2)
    ll, lh, hl, _ = haar_dwt2d(x)
    torch.testing.assert_close(out, torch.cat([ll, lh, hl], dim=1), atol=1e-6, rtol=1e-6)
    assert IEWADWTDown("all", reduce="concat")(x).shape == (2, 12, 2, 2)
    for module in (IEWADWTDown(), IEWADWTDown("all", reduce="concat")):
        assert not list(module.parameters())
        assert not module.state_dict(), "fixed kernels are not part of the checkpoint"
    down = IEWADWTDown().double()
    assert down(x.double()).dtype == torch.float64


def test_errors():
    with pytest.raises(ValueError, match=r"divisible by 2, got H x W = 5 x 4"):
        IEWADWTDown()(torch.zeros(1, 1, 5, 4))
    with pytest.raises(ValueError, match=r"divisible by 2, got H x W = 4 x 7"):
        haar_dwt2d(torch.zeros(1, 1, 4, 7))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        IEWADWTDown()(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="bands must be distinct"):
        IEWADWTDown(("LL", "XX"))
    with pytest.raises(ValueError, match="bands must be distinct"):
        IEWADWTDown(("LL", "LL"))
    with pytest.raises(ValueError, match="'all'"):
        IEWADWTDown("LL")
    with pytest.raises(ValueError, match="reduce"):
        IEWADWTDown(reduce="mean")
    with pytest.raises(ValueError, match="unknown Haar sub-band"):
        haar_kernel("HX")


@pytest.mark.filterwarnings("ignore")
def test_scripting():
    x = torch.randn(2, 3, 8, 8)
    for module in (IEWADWTDown(), IEWADWTDown("all", reduce="concat")):
        scripted = torch.jit.script(module)
        torch.testing.assert_close(scripted(x), module(x), atol=0.0, rtol=0.0)
    scripted_dwt = torch.jit.script(haar_dwt2d)
    for got, expected in zip(scripted_dwt(x), haar_dwt2d(x)):
        torch.testing.assert_close(got, expected, atol=0.0, rtol=0.0)
    with pytest.raises(Exception, match="divisible by 2"):
        torch.jit.script(IEWADWTDown())(torch.zeros(1, 1, 3, 4))


@pytest.mark.parametrize("reduce", ["sum", "concat"])
def test_fixed_kernel_convolution_equals_the_depthwise_one_and_exports_to_onnx(reduce: str, tmp_path):
    import torch.nn.functional as F

    from common.deployment import export_onnx, onnx_outputs, onnx_session

    torch.manual_seed(0)
    module = IEWADWTDown(reduce=reduce)
    x = torch.randn(2, 5, 8, 6)
    # the former implementation: the kernels repeated per channel, one depthwise convolution, channel-major output
    depthwise = F.conv2d(x, module.kernels.repeat(5, 1, 1, 1), stride=2, groups=5)
    if module.num_kernels > 1:
        depthwise = depthwise.reshape(2, 5, module.num_kernels, 4, 3).transpose(1, 2).reshape(2, -1, 4, 3)
    torch.testing.assert_close(module(x), depthwise, atol=1e-6, rtol=1e-6)
    export_onnx(module, torch.randn(1, 5, 8, 6), tmp_path / "dwt.onnx")  # a kernel shape ONNX knows
    (deployed,) = onnx_outputs(onnx_session(tmp_path / "dwt.onnx", threads=1), x)  # batch 2: dynamic batch axis
    torch.testing.assert_close(deployed, module(x), atol=1e-5, rtol=1e-5)
