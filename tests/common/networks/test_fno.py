from __future__ import annotations

import pytest
import torch

from common.networks import (
    DisplacementFieldNet,
    FNOReg,
    FourierLayer,
    FourierUnit,
    SpectralConv,
    SpectralTransform,
    SpectralTransformBlock,
    fno_baseline,
    tucker_ranks,
)


def _dense_reference(x: torch.Tensor, conv: SpectralConv) -> torch.Tensor:
    """2D spectral convolution written out with explicit corner slices (neuraloperator-0.2.0 semantics)."""
    h, w = x.shape[-2:]
    m0, m1 = conv.half_modes
    x_ft = torch.fft.rfft2(x)
    weights = torch.complex(conv.weight[..., 0], conv.weight[..., 1])
    out = torch.zeros(x.shape[0], conv.out_channels, h, w // 2 + 1, dtype=x_ft.dtype)
    out[:, :, :m0, :m1] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :m0, :m1], weights[0])
    out[:, :, -m0:, :m1] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, -m0:, :m1], weights[1])
    return torch.fft.irfft2(out, s=(h, w)) + conv.bias


def test_spectral_conv_matches_explicit_corner_formula():
    torch.manual_seed(0)
    conv = SpectralConv(3, 4, n_modes=(8, 6))
    x = torch.randn(2, 3, 16, 20)
    assert torch.allclose(conv(x), _dense_reference(x, conv), atol=1e-5)


def test_spectral_conv_keeps_a_fixed_band_at_every_resolution():
    """A band-limited input is mapped identically at two resolutions: the modes do not depend on the grid size."""
    torch.manual_seed(0)
    conv = SpectralConv(1, 1, n_modes=(8, 8), bias=False)

    def wave(n: int) -> torch.Tensor:
        t = torch.arange(n) / n
        return (torch.sin(2 * torch.pi * 2 * t)[:, None] * torch.cos(2 * torch.pi * 3 * t)[None, :])[None, None]

    coarse, fine = conv(wave(32)), conv(wave(64))
    assert torch.allclose(fine[..., ::2, ::2], coarse, atol=1e-5)


def test_spectral_conv_uses_the_modes_a_small_input_has():
    conv = SpectralConv(2, 2, n_modes=(40, 48))
    assert conv(torch.randn(1, 2, 10, 12)).shape == (1, 2, 10, 12)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_tucker_weights_are_low_rank_and_smaller(spatial_dims: int):
    modes = (8, 8) if spatial_dims == 2 else (6, 6, 6)
    dense = SpectralConv(8, 8, modes)
    tucker = SpectralConv(8, 8, modes, factorization="tucker", rank=0.42)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(tucker) < 0.6 * count(dense)
    weights = tucker._weights()
    assert weights.shape == dense._weights().shape and weights.is_complex()
    x = torch.randn(1, 8, *([12] * spatial_dims))
    assert tucker(x).shape == x.shape


def test_tucker_ranks_hit_the_parameter_fraction():
    shape = [32, 32, 30, 36]
    ranks = tucker_ranks(shape, 0.42)
    params = torch.tensor(ranks).prod().item() + sum(s * r for s, r in zip(shape, ranks))
    dense = torch.tensor(shape).prod().item()
    assert 0.3 * dense < params <= 0.42 * dense
    with pytest.raises(ValueError, match="rank"):
        tucker_ranks(shape, 1.5)


def test_fourier_layer_residual_and_plain():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 12, 12)
    residual = FourierLayer(4, (6, 6), residual=True)
    plain = FourierLayer(4, (6, 6), residual=False)
    plain.load_state_dict(residual.state_dict())
    assert torch.allclose(residual(x), plain(x) + x, atol=1e-6)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_spectral_transform_blocks_keep_shape(spatial_dims: int):
    x = torch.randn(2, 6, *([8] * spatial_dims))
    assert FourierUnit(spatial_dims, 6)(x).shape == x.shape
    assert SpectralTransform(spatial_dims, 6)(x).shape == x.shape
    block = SpectralTransformBlock(spatial_dims, 6, fft_axes=[0])
    assert block(x).shape == x.shape
    with pytest.raises(ValueError, match="fft_axes"):
        FourierUnit(spatial_dims, 6, fft_axes=[5])


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_fnoreg_and_fno_one_implementation_for_2d_and_3d(spatial_dims: int):
    modes = (8, 8) if spatial_dims == 2 else (4, 4, 4)
    net = FNOReg(spatial_dims, hidden_channels=4, n_layers=2, n_modes=modes)
    x = torch.rand(2, 2, *([12] * spatial_dims))
    out = net(x)
    assert out.shape == (2, spatial_dims, *([12] * spatial_dims))
    out.square().mean().backward()
    assert net.lifting.weight.grad.abs().sum() > 0
    base = fno_baseline(spatial_dims, hidden_channels=4, n_layers=2, n_modes=modes)
    assert not any(isinstance(m, SpectralTransformBlock) for m in base.modules())
    assert sum(isinstance(m, SpectralTransformBlock) for m in net.modules()) == 2
    with pytest.raises(ValueError, match="n_modes"):
        FNOReg(spatial_dims, n_modes=(8,))


def test_displacement_net_converts_normalised_units_to_voxels():
    class Constant(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ones(x.shape[0], 2, *x.shape[2:])

    net = DisplacementFieldNet(Constant(), 2, init_identity=False)
    ddf = net(torch.zeros(1, 2, 9, 21))
    # one normalised unit is half the grid extent: (S - 1) / 2 voxels along each axis
    assert torch.allclose(ddf[0, 0], torch.full((9, 21), 4.0)) and torch.allclose(ddf[0, 1], torch.full((9, 21), 10.0))
    assert torch.equal(DisplacementFieldNet(Constant(), 2, units="voxel", init_identity=False)(torch.zeros(1, 2, 4, 4)),
                       torch.ones(1, 2, 4, 4))  # fmt: skip
    with pytest.raises(ValueError, match="units"):
        DisplacementFieldNet(Constant(), 2, units="mm")


def test_displacement_net_starts_near_identity_and_scripts():
    torch.manual_seed(0)
    net = DisplacementFieldNet(FNOReg(2, hidden_channels=4, n_layers=2, n_modes=(8, 8), factorization="tucker"), 2)
    net.eval()
    x = torch.rand(2, 2, 16, 24)
    with torch.no_grad():
        eager = net(x)
        scripted = torch.jit.script(net)(x)
    assert eager.abs().max() < 1e-2
    assert torch.allclose(eager, scripted, atol=1e-6)
