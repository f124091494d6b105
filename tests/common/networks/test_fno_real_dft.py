"""The FNO layers' ONNX path: DFT matrix products in real arithmetic equal the FFT path, and it exports."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.deployment import eager_outputs, export_onnx, onnx_outputs, onnx_session
from common.networks import FNOReg, FourierUnit, SpectralConv
from common.networks.fno import _real_irfftn, _real_rfftn

ATOL = 1e-5


@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
@pytest.mark.parametrize("shape", [(2, 3, 8, 6), (1, 2, 7, 5), (1, 2, 6, 5, 4)])
def test_real_rfftn_and_irfftn_equal_torch_fft(shape: tuple[int, ...], norm: str):
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64)
    dims = list(range(-(len(shape) - 2), 0))
    sizes = list(shape[2:])
    freqs = [range(n) for n in sizes[:-1]] + [range(sizes[-1] // 2 + 1)]
    reference = torch.fft.rfftn(x, dim=dims, norm=norm)
    real, imag = _real_rfftn(x, dims, freqs, norm)
    assert torch.allclose(real, reference.real, atol=1e-10) and torch.allclose(imag, reference.imag, atol=1e-10)
    # a spectrum with non-zero imaginary DC / Nyquist parts: irfftn ignores them, so must the real path
    spectrum = torch.randn(reference.shape, dtype=torch.complex128)
    expected = torch.fft.irfftn(spectrum, s=sizes, dim=dims, norm=norm)
    assert torch.allclose(_real_irfftn(spectrum.real, spectrum.imag, sizes, dims, freqs, norm), expected, atol=1e-10)


def test_real_irfftn_of_a_frequency_subset_equals_the_zero_filled_spectrum():
    torch.manual_seed(0)
    sizes, dims = [8, 10], [-2, -1]
    freqs = [[0, 1, 6, 7], range(3)]
    part = torch.randn(1, 2, 4, 3, dtype=torch.complex128)
    full = torch.zeros(1, 2, 8, 6, dtype=torch.complex128)
    full[:, :, [0, 1, 6, 7], :3] = part
    expected = torch.fft.irfftn(full, s=sizes, dim=dims)
    assert torch.allclose(_real_irfftn(part.real, part.imag, sizes, dims, freqs), expected, atol=1e-10)


@pytest.mark.parametrize("factorization", [None, "tucker"])
@pytest.mark.parametrize("shape", [(2, 3, 16, 12), (1, 3, 6, 4), (1, 3, 8, 6, 6)])
def test_spectral_conv_real_path_equals_fft_path(shape: tuple[int, ...], factorization: str | None):
    torch.manual_seed(0)
    spatial = len(shape) - 2
    conv = SpectralConv(3, 4, [8] * spatial, factorization=factorization)  # (1, 3, 6, 4): fewer modes than asked
    x = torch.randn(shape)
    with torch.no_grad():
        fft_path, real_path = conv(x), conv._forward_real(x)
    assert real_path.shape == fft_path.shape
    assert torch.allclose(real_path, fft_path, atol=ATOL), float((real_path - fft_path).abs().max())


@pytest.mark.parametrize("fft_axes", [None, [0]])
def test_fourier_unit_real_path_equals_fft_path(fft_axes: list[int] | None):
    torch.manual_seed(0)
    unit = FourierUnit(2, 3, fft_axes=fft_axes).eval()
    x = torch.randn(2, 3, 10, 7)
    with torch.no_grad():
        assert torch.allclose(unit._forward_real(x), unit(x), atol=ATOL)


def test_fnoreg_exports_to_onnx_and_still_scripts(tmp_path: Path):
    torch.manual_seed(0)
    net = FNOReg(2, hidden_channels=8, n_layers=2, n_modes=(12, 12), factorization="tucker").eval()
    export_onnx(net, torch.rand(1, 2, 24, 20), tmp_path / "fno.onnx")
    x = torch.rand(2, 2, 24, 20)
    ours, eager = onnx_outputs(onnx_session(tmp_path / "fno.onnx", threads=1), x), eager_outputs(net, x)
    assert torch.allclose(ours[0], eager[0], atol=1e-4), float((ours[0] - eager[0]).abs().max())
    scripted = torch.jit.script(net)  # the export-only path stays out of TorchScript
    with torch.no_grad():
        assert torch.allclose(scripted(x), eager[0], atol=1e-6)
