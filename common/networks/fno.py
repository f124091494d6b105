"""Fourier Neural Operator registration networks (FNOReg, Drozdov & Sorokin, ICPR 2024) for 2D and 3D.

One implementation serves both dimensionalities: every block picks its convolution and normalisation from
``spatial_dims``, and the spectral layers work on any number of spatial axes.

Pieces (paper §2.3; details the paper leaves open follow the authors' public code, see the bundle README):

- :class:`SpectralConv`: the FNO kernel integral ``F^-1(R . F(u))``. ``n_modes`` counts modes per axis as
  neuraloperator 0.2.0 does: ``n // 2`` lowest positive *and* ``n // 2`` lowest negative frequencies on every axis
  but the last, and ``n // 2`` frequencies of the real FFT on the last axis (``2 ** (d - 1)`` weight corners). The
  kept modes do not depend on the input size, which is what makes the operator resolution-robust. Weights are dense
  complex tensors, or low-rank Tucker tensors (``factorization="tucker"``, ``rank`` = fraction of the dense
  parameter count, 0.42 in the authors' code). Complex weights are stored as real ``(..., 2)`` tensors so the module
  scripts with TorchScript (``torch.fft.rfftn`` / ``irfftn`` script; complex parameters are avoided).
  ONNX has no FFT the exporter can emit and no complex tensors: while ``torch.onnx.export`` traces them,
  :class:`SpectralConv` and :class:`FourierUnit` compute the same transforms as real matrix products with DFT
  bases (only the kept modes for :class:`SpectralConv`), equal to the FFT path within float32 rounding.
- :class:`FourierLayer`: ``u + act(K u + W u)`` with the extra residual FNOReg adds after the activation;
  ``residual=False`` gives the standard FNO layer.
- :class:`FourierUnit`, :class:`SpectralTransform`, :class:`SpectralTransformBlock`: the Fast-Fourier-Convolution
  global path (Chi et al.) used as encoder and decoder feature extractors (the FFC with ``alpha = 1``).
- :class:`FNOReg`: lifting 1x1 conv -> spectral-transform block -> N Fourier layers -> spectral-transform block ->
  projection MLP (1x1 conv, ReLU, 1x1 conv) to one displacement channel per spatial axis. ``spectral_transform=False``
  and ``residual=False`` give the plain FNO baseline (:func:`fno_baseline`).
- :class:`DisplacementFieldNet`: wraps any backbone that maps the 2-channel (moving, fixed) pair to a displacement in
  normalised coordinates (``[-1, 1]`` across each axis, as the authors' code) and returns a MONAI dense displacement
  field in voxel units for the input's own size: ``ddf[:, i] = phi[:, i] * (S_i - 1) / 2``, channel ``i`` along
  spatial axis ``i``, ready for ``monai.networks.blocks.Warp``. Normalised units are what allow training at half
  resolution and evaluating at full resolution with the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from monai.networks.layers import Conv, Norm
from torch import nn

__all__ = [
    "SpectralConv",
    "FourierLayer",
    "FourierUnit",
    "SpectralTransform",
    "SpectralTransformBlock",
    "FNOReg",
    "fno_baseline",
    "DisplacementFieldNet",
    "tucker_ranks",
]

_LETTERS = "xyzw"


def _conv(spatial_dims: int, in_channels: int, out_channels: int, bias: bool = True) -> nn.Module:
    return Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size=1, bias=bias)


def _batch_norm(spatial_dims: int, channels: int) -> nn.Module:
    return Norm[Norm.BATCH, spatial_dims](channels)


def _to_last(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x.movedim(dim, -1)`` with non-negative axes (the exporter writes negative ones into an invalid Transpose)."""
    return x.movedim(dim, x.dim() - 1)


def _from_last(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``x.movedim(-1, dim)`` with non-negative axes."""
    return x.movedim(x.dim() - 1, dim)


def _dft_basis(n: int, freqs: Sequence[int], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``2 pi t k / n``, rows ``t`` in ``range(n)``, columns ``k`` in ``freqs``.

    Built in float64 with numpy so that the exporter stores them as constants (no traced ops) and their rounding
    stays below float32's.
    """
    import numpy as np

    angle = 2 * np.pi * np.outer(np.arange(n), np.asarray(list(freqs), dtype=np.float64)) / n
    cos, sin = (torch.from_numpy(v).to(dtype=like.dtype, device=like.device) for v in (np.cos(angle), np.sin(angle)))
    return cos, sin


def _scale(norm: str, count: int, inverse: bool) -> float:
    """The ``torch.fft`` normalisation factor of a transform over ``count`` points."""
    if norm == "ortho":
        return 1.0 / math.sqrt(count)
    if norm not in ("backward", "forward"):
        raise ValueError(f"fft norm must be 'backward', 'ortho' or 'forward', got {norm!r}")
    return 1.0 / count if (norm == "backward") == inverse else 1.0


def _real_rfftn(
    x: torch.Tensor, dims: Sequence[int], freqs: Sequence[Sequence[int]], norm: str = "backward"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.fft.rfftn(x, dim=dims, norm=norm)`` at the frequencies ``freqs``, as (real, imaginary) parts.

    Real arithmetic only (matrix products with DFT bases), so ONNX can express it; cost ``O(n * len(freqs))``
    per axis, which is small when few modes are kept.

    Args:
        x: a real tensor.
        dims: the transformed axes (negative), the last one real-to-complex.
        freqs: per axis of ``dims``, the frequency indices to compute (``range(n // 2 + 1)`` on the last axis
            and ``range(n)`` on the others give the whole ``rfftn``).
        norm: ``torch.fft`` normalisation.
    """
    dims = [d % x.dim() for d in dims]  # non-negative: the exporter writes negative movedim axes into Transpose
    sizes = [int(x.shape[d]) for d in dims]
    cos, sin = _dft_basis(sizes[-1], freqs[-1], x)
    last = _to_last(x, dims[-1])
    real, imag = _from_last(last @ cos, dims[-1]), _from_last(-(last @ sin), dims[-1])
    for d, n, f in zip(dims[:-1], sizes[:-1], freqs[:-1]):
        cos, sin = _dft_basis(n, f, x)
        re, im = _to_last(real, d), _to_last(imag, d)
        # (re + i im) (cos - i sin)
        real, imag = _from_last(re @ cos + im @ sin, d), _from_last(im @ cos - re @ sin, d)
    factor = _scale(norm, math.prod(sizes), inverse=False)
    return (real * factor, imag * factor) if factor != 1.0 else (real, imag)


def _real_irfftn(
    real: torch.Tensor,
    imag: torch.Tensor,
    sizes: Sequence[int],
    dims: Sequence[int],
    freqs: Sequence[Sequence[int]],
    norm: str = "backward",
) -> torch.Tensor:
    """``torch.fft.irfftn(spectrum, s=sizes, dim=dims, norm=norm)`` of a spectrum that is zero off ``freqs``.

    The inverse of :func:`_real_rfftn`: ``real`` / ``imag`` hold the spectrum at the frequency indices ``freqs``
    only (every other coefficient is zero). The last axis is complex-to-real: its DC and Nyquist coefficients count
    once and their imaginary parts are ignored, the others twice (Hermitian symmetry), as ``irfftn`` does.
    """
    dims = [d % real.dim() for d in dims]
    for d, n, f in zip(dims[:-1], sizes[:-1], freqs[:-1]):
        cos, sin = _dft_basis(n, f, real)
        re, im = _to_last(real, d), _to_last(imag, d)
        # (re + i im) (cos + i sin), summed over the frequencies
        real, imag = _from_last(re @ cos.T - im @ sin.T, d), _from_last(re @ sin.T + im @ cos.T, d)
    n = int(sizes[-1])
    cos, sin = _dft_basis(n, freqs[-1], real)
    weight = torch.tensor([1.0 if k == 0 or 2 * k == n else 2.0 for k in freqs[-1]], dtype=real.dtype)
    re, im = _to_last(real, dims[-1]), _to_last(imag, dims[-1])
    out = _from_last(re @ (cos * weight).T - im @ (sin * weight).T, dims[-1])
    factor = _scale(norm, math.prod(int(v) for v in sizes), inverse=True)
    return out * factor if factor != 1.0 else out


def tucker_ranks(shape: Sequence[int], rank: float) -> list[int]:
    """Tucker ranks, one per axis of ``shape``, whose core + factors hold about ``rank`` x the dense count.

    The same fraction of every axis is kept (as tensorly's ``validate_tucker_rank`` does); the fraction is found by
    bisection.

    Args:
        shape: shape of the dense tensor.
        rank: target fraction of the dense parameter count, in (0, 1].

    Raises:
        ValueError: when ``rank`` is not in (0, 1].
    """
    if not 0 < rank <= 1:
        raise ValueError(f"rank must be a fraction of the dense parameter count in (0, 1], got {rank}")
    dense = math.prod(shape)

    def count(f: float) -> tuple[int, list[int]]:
        ranks = [max(1, min(s, round(f * s))) for s in shape]
        return math.prod(ranks) + sum(s * r for s, r in zip(shape, ranks)), ranks

    low, high = 0.0, 1.0
    for _ in range(50):
        mid = (low + high) / 2
        if count(mid)[0] > rank * dense:
            high = mid
        else:
            low = mid
    return count(low)[1]


class _Factor(nn.Module):
    """One complex Tucker factor matrix (rows = axis size, columns = rank), stored as real pairs."""

    def __init__(self, corners: int, size: int, rank: int, std: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(corners, size, rank, 2) * std)

    def forward(self) -> torch.Tensor:
        return torch.complex(self.weight[..., 0], self.weight[..., 1])


class SpectralConv(nn.Module):
    """Fourier-space linear layer keeping a fixed number of low modes per axis (neuraloperator 0.2.0 semantics).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        n_modes: total modes per spatial axis (``n // 2`` positive and ``n // 2`` negative frequencies; ``n // 2``
            real-FFT frequencies on the last axis). Inputs too small for them use the modes they have.
        factorization: ``None`` (dense complex weights) or ``"tucker"`` (low-rank Tucker weights).
        rank: for Tucker weights, the fraction of the dense parameter count (0.42 in the authors' code).
        bias: add a learnable per-channel bias after the inverse FFT.
        fft_norm: ``torch.fft`` normalisation; ``"backward"`` as the authors' code (keeps the kept modes' gains
            independent of the grid size).

    Raises:
        ValueError: for an unsupported factorization or fewer than 1 or more than 3 spatial axes.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_modes: Sequence[int],
        factorization: str | None = None,
        rank: float = 0.42,
        bias: bool = True,
        fft_norm: str = "backward",
    ) -> None:
        super().__init__()
        if not 1 <= len(n_modes) <= 3:
            raise ValueError(f"n_modes must give 1 to 3 spatial axes, got {list(n_modes)}")
        if factorization not in (None, "tucker", "dense"):
            raise ValueError(f"factorization must be None, 'dense' or 'tucker', got {factorization!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.spatial_dims = len(n_modes)
        self.half_modes: list[int] = [max(1, int(m) // 2) for m in n_modes]
        self.fft_norm = fft_norm
        self.fft_dims: list[int] = list(range(-self.spatial_dims, 0))
        # corner c takes, on axis k (all but the last), the positive (bit 0) or negative (bit 1) frequencies
        self.corners: list[list[int]] = [
            [(c >> k) & 1 for k in range(self.spatial_dims - 1)] for c in range(2 ** (self.spatial_dims - 1))
        ]
        n_corners = len(self.corners)
        axes = _LETTERS[: self.spatial_dims]
        self.equation = f"bi{axes},io{axes}->bo{axes}"
        std = 1.0 / (in_channels * out_channels)
        shape = [in_channels, out_channels, *self.half_modes]
        self.tucker = factorization == "tucker"
        if self.tucker:
            ranks = tucker_ranks(shape, rank)
            self.ranks = ranks
            # factors of std 1/sqrt(r): the reconstructed weights start with about the dense initial std
            self.core = nn.Parameter(torch.randn(n_corners, *ranks, 2) * std)
            self.factors = nn.ModuleList([_Factor(n_corners, s, r, 1.0 / math.sqrt(r)) for s, r in zip(shape, ranks)])
            self.weight = nn.Parameter(torch.zeros(0))  # unused: keeps one attribute set for TorchScript
        else:
            self.ranks = []
            self.core = nn.Parameter(torch.zeros(0))
            self.factors = nn.ModuleList()
            self.weight = nn.Parameter(torch.randn(n_corners, *shape, 2) * std)
        self.bias = nn.Parameter(torch.randn(out_channels, *([1] * self.spatial_dims)) * std) if bias else None

    def _weights(self) -> torch.Tensor:
        """Complex weights ``(corners, in, out, *half_modes)``, rebuilt from the Tucker factors when factorized."""
        if not self.tucker:
            return torch.complex(self.weight[..., 0], self.weight[..., 1])
        w = torch.complex(self.core[..., 0], self.core[..., 1])  # (corners, r_0, ..., r_n)
        for axis, factor in enumerate(self.factors):
            u = factor()  # (corners, size, rank)
            # mode-(axis + 1) product: contract the rank axis of w with the factor's columns
            w = torch.movedim(w, axis + 1, -1)
            u_t = u.transpose(-1, -2).reshape([u.shape[0]] + [1] * (w.dim() - 3) + [u.shape[2], u.shape[1]])
            w = torch.movedim(torch.matmul(w, u_t), -1, axis + 1)
        return w

    def _real_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_weights` as (real, imaginary) parts, in real arithmetic (for ONNX export)."""
        if not self.tucker:
            return self.weight[..., 0], self.weight[..., 1]
        wr, wi = self.core[..., 0], self.core[..., 1]
        for axis, factor in enumerate(self.factors):
            ur, ui = factor.weight[..., 0], factor.weight[..., 1]
            wr, wi = _to_last(wr, axis + 1), _to_last(wi, axis + 1)
            shape = [ur.shape[0]] + [1] * (wr.dim() - 3) + [ur.shape[2], ur.shape[1]]
            ur_t, ui_t = ur.transpose(-1, -2).reshape(shape), ui.transpose(-1, -2).reshape(shape)
            wr, wi = torch.matmul(wr, ur_t) - torch.matmul(wi, ui_t), torch.matmul(wr, ui_t) + torch.matmul(wi, ur_t)
            wr, wi = _from_last(wr, axis + 1), _from_last(wi, axis + 1)
        return wr, wi

    def _kept_modes(self, sizes: list[int]) -> list[int]:
        """Modes that fit an input of spatial ``sizes``: half the axis on two-sided axes, the real-FFT length last."""
        kept: list[int] = []
        for k in range(self.spatial_dims):
            available = sizes[k] // 2 + 1 if k == self.spatial_dims - 1 else sizes[k] // 2
            kept.append(min(self.half_modes[k], max(1, available)))
        return kept

    def _forward_real(self, x: torch.Tensor) -> torch.Tensor:
        """The forward pass with DFT matrix products instead of FFTs, computing the kept modes only (ONNX export)."""
        sizes = [int(v) for v in x.shape[-self.spatial_dims :]]
        kept = self._kept_modes(sizes)
        # per two-sided axis the positive block [0, m) then the negative block [n - m, n); the last axis [0, m)
        freqs = [list(range(m)) + list(range(n - m, n)) for n, m in zip(sizes[:-1], kept[:-1])] + [range(kept[-1])]
        xr, xi = _real_rfftn(x.float(), self.fft_dims, freqs, self.fft_norm)
        wr, wi = self._real_weights()

        def corner_product(c: int, corner: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            x_r, x_i, w_r, w_i = xr, xi, wr[c], wi[c]
            for k in range(self.spatial_dims):
                m = kept[k]
                negative = k < self.spatial_dims - 1 and corner[k] == 1
                start, w_start = (m, self.half_modes[k] - m) if negative else (0, 0)
                x_r, x_i = x_r.narrow(2 + k, start, m), x_i.narrow(2 + k, start, m)
                w_r, w_i = w_r.narrow(2 + k, w_start, m), w_i.narrow(2 + k, w_start, m)
            eq = self.equation
            real = torch.einsum(eq, x_r, w_r) - torch.einsum(eq, x_i, w_i)
            imag = torch.einsum(eq, x_r, w_i) + torch.einsum(eq, x_i, w_r)
            return real, imag

        def assemble(k: int, bits: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            # the corners side by side in the order of ``freqs``: bit 0 (positive) before bit 1 on axis k
            if k == self.spatial_dims - 1:
                return corner_product(self.corners.index(bits), bits)
            parts = [assemble(k + 1, [*bits, bit]) for bit in (0, 1)]
            return torch.cat([p[0] for p in parts], dim=2 + k), torch.cat([p[1] for p in parts], dim=2 + k)

        real, imag = assemble(0, [])
        out = _real_irfftn(real, imag, sizes, self.fft_dims, freqs, self.fft_norm)
        if self.bias is not None:
            out = out + self.bias
        return out.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``x`` of shape ``(batch, in_channels, *spatial)``."""
        # the real path is left out of TorchScript (a static ``is_scripting`` branch is not compiled)
        if not torch.jit.is_scripting():
            if torch.onnx.is_in_onnx_export():
                return self._forward_real(x)
        sizes = x.shape[-self.spatial_dims :]
        x_ft = torch.fft.rfftn(x.float(), dim=self.fft_dims, norm=self.fft_norm)
        out_shape = [x.shape[0], self.out_channels] + list(x_ft.shape[2:])
        out_ft = torch.zeros(out_shape, dtype=x_ft.dtype, device=x.device)
        weights = self._weights()
        # modes that fit this input: half the axis on two-sided axes, the real-FFT length on the last one
        kept: list[int] = []
        for k in range(self.spatial_dims):
            available = x_ft.shape[2 + k] if k == self.spatial_dims - 1 else sizes[k] // 2
            kept.append(min(self.half_modes[k], max(1, available)))
        for c, corner in enumerate(self.corners):
            x_part = x_ft
            w_part = weights[c]
            out_part = out_ft
            for k in range(self.spatial_dims):
                m = kept[k]
                negative = k < self.spatial_dims - 1 and corner[k] == 1
                start = x_ft.shape[2 + k] - m if negative else 0
                w_start = self.half_modes[k] - m if negative else 0
                x_part = x_part.narrow(2 + k, start, m)
                out_part = out_part.narrow(2 + k, start, m)
                w_part = w_part.narrow(2 + k, w_start, m)
            out_part.copy_(torch.einsum(self.equation, x_part, w_part))
        out = torch.fft.irfftn(out_ft, s=sizes, dim=self.fft_dims, norm=self.fft_norm)
        if self.bias is not None:
            out = out + self.bias
        return out.to(x.dtype)


class FourierLayer(nn.Module):
    """One Fourier layer: ``act(K u + W u)`` plus, for FNOReg, the residual ``u`` after the activation.

    Args:
        channels: hidden channels (input = output).
        n_modes: modes per spatial axis (see :class:`SpectralConv`).
        factorization: spectral weights, ``None`` (dense) or ``"tucker"``.
        rank: Tucker rank fraction.
        residual: add the input after the activation (FNOReg); ``False`` is the standard FNO layer.
        activation: apply GELU (the standard FNO leaves it out after its last layer).
    """

    def __init__(
        self,
        channels: int,
        n_modes: Sequence[int],
        factorization: str | None = None,
        rank: float = 0.42,
        residual: bool = True,
        activation: bool = True,
    ) -> None:
        super().__init__()
        spatial_dims = len(n_modes)
        self.spectral = SpectralConv(channels, channels, n_modes, factorization=factorization, rank=rank)
        self.skip = _conv(spatial_dims, channels, channels)
        self.act = nn.GELU() if activation else nn.Identity()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = self.act(self.spectral(x) + self.skip(x))
        return x + y if self.residual else y


class FourierUnit(nn.Module):
    """FFC Fourier unit: real FFT, real and imaginary parts as channels, 1x1 conv + BatchNorm + ReLU, inverse FFT.

    Args:
        spatial_dims: 2 or 3.
        channels: input = output channels.
        fft_axes: spatial axes transformed (0-based; default all). The authors' 2D code transforms only axis 0.
        fft_norm: ``"ortho"`` as the FFC and the authors' code.
    """

    def __init__(
        self, spatial_dims: int, channels: int, fft_axes: Sequence[int] | None = None, fft_norm: str = "ortho"
    ) -> None:
        super().__init__()
        axes = list(range(spatial_dims)) if fft_axes is None else sorted(int(a) for a in fft_axes)
        if not axes or any(not 0 <= a < spatial_dims for a in axes):
            raise ValueError(f"fft_axes must be spatial axes in [0, {spatial_dims}), got {fft_axes}")
        self.spatial_dims = spatial_dims
        self.fft_dims: list[int] = [a - spatial_dims for a in axes]
        self.fft_norm = fft_norm
        self.conv = nn.Sequential(
            _conv(spatial_dims, 2 * channels, 2 * channels), _batch_norm(spatial_dims, 2 * channels), nn.ReLU()
        )

    def _forward_real(self, x: torch.Tensor) -> torch.Tensor:
        """The forward pass with DFT matrix products instead of FFTs (ONNX export)."""
        sizes = [int(x.shape[d]) for d in self.fft_dims]
        freqs = [range(n) for n in sizes[:-1]] + [range(sizes[-1] // 2 + 1)]
        real, imag = _real_rfftn(x.float(), self.fft_dims, freqs, self.fft_norm)
        b, c, freq_shape = real.shape[0], real.shape[1], list(real.shape[2:])
        stacked = self.conv(torch.stack([real, imag], dim=2).reshape([b, 2 * c] + freq_shape))
        stacked = stacked.reshape([b, c, 2] + freq_shape)
        return _real_irfftn(stacked[:, :, 0], stacked[:, :, 1], sizes, self.fft_dims, freqs, self.fft_norm).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        # the real path is left out of TorchScript (a static ``is_scripting`` branch is not compiled)
        if not torch.jit.is_scripting():
            if torch.onnx.is_in_onnx_export():
                return self._forward_real(x)
        sizes = [x.shape[d] for d in self.fft_dims]
        spec = torch.fft.rfftn(x.float(), dim=self.fft_dims, norm=self.fft_norm)
        b, c = spec.shape[0], spec.shape[1]
        freq_shape = list(spec.shape[2:])
        stacked = torch.stack([spec.real, spec.imag], dim=2).reshape([b, 2 * c] + freq_shape)
        stacked = self.conv(stacked).reshape([b, c, 2] + freq_shape)
        spec = torch.complex(stacked[:, :, 0], stacked[:, :, 1])
        return torch.fft.irfftn(spec, s=sizes, dim=self.fft_dims, norm=self.fft_norm).to(x.dtype)


class SpectralTransform(nn.Module):
    """FFC spectral transform (global path, ``alpha = 1``) followed by the FFC's BatchNorm + ReLU.

    1x1 conv to ``channels // 2`` + BN + ReLU -> Fourier unit with a residual -> 1x1 conv back to ``channels``
    -> BN + ReLU.
    """

    def __init__(
        self, spatial_dims: int, channels: int, fft_axes: Sequence[int] | None = None, fft_norm: str = "ortho"
    ) -> None:
        super().__init__()
        half = max(1, channels // 2)
        self.reduce = nn.Sequential(
            _conv(spatial_dims, channels, half, bias=False), _batch_norm(spatial_dims, half), nn.ReLU()
        )
        self.fourier = FourierUnit(spatial_dims, half, fft_axes=fft_axes, fft_norm=fft_norm)
        self.expand = _conv(spatial_dims, half, channels, bias=False)
        self.out = nn.Sequential(_batch_norm(spatial_dims, channels), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        y = self.reduce(x)
        y = self.fourier(y) + y
        return self.out(self.expand(y))


class SpectralTransformBlock(nn.Module):
    """Residual block of two spectral transforms, the encoder / decoder feature extractor of FNOReg."""

    def __init__(
        self, spatial_dims: int, channels: int, fft_axes: Sequence[int] | None = None, fft_norm: str = "ortho"
    ) -> None:
        super().__init__()
        self.first = SpectralTransform(spatial_dims, channels, fft_axes, fft_norm)
        self.second = SpectralTransform(spatial_dims, channels, fft_axes, fft_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return x + self.second(self.first(x))


class FNOReg(nn.Module):
    """FNOReg: a Fourier neural operator from the (moving, fixed) pair to a displacement field.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of the concatenated pair (2).
        out_channels: displacement channels (default ``spatial_dims``).
        hidden_channels: ``d_u`` of the paper (16 small / 32 medium and large in 2D, 12 in 3D).
        n_layers: number of Fourier layers ``N`` (6 small, 12 medium / large, 15 in 3D).
        n_modes: ``k_max`` per axis, neuraloperator-0.2.0 counting ((40, 48) 2D; (40, 48, 56) 3D).
        projection_channels: hidden width of the projection (default ``2 * hidden_channels``).
        spectral_transform: add the spectral-transform encoder and decoder (FNOReg); ``False`` for the plain FNO.
        residual: residual Fourier layers (FNOReg); ``False`` for the plain FNO.
        factorization: ``None`` (dense spectral weights) or ``"tucker"``.
        rank: Tucker rank fraction (0.42 in the authors' code).
        fft_axes: axes the spectral transforms' FFT runs over (default all; ``[0]`` reproduces the authors' 2D code).
        projection_act: ``"relu"`` (FNOReg) or ``"gelu"`` (neuraloperator's FNO).

    Raises:
        ValueError: when ``n_modes`` does not give one value per spatial axis.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 2,
        out_channels: int | None = None,
        hidden_channels: int = 16,
        n_layers: int = 6,
        n_modes: Sequence[int] = (40, 48),
        projection_channels: int | None = None,
        spectral_transform: bool = True,
        residual: bool = True,
        factorization: str | None = None,
        rank: float = 0.42,
        fft_axes: Sequence[int] | None = None,
        projection_act: str = "relu",
    ) -> None:
        super().__init__()
        if len(n_modes) != spatial_dims:
            raise ValueError(f"n_modes {list(n_modes)} must give one value per spatial axis ({spatial_dims})")
        out_channels = spatial_dims if out_channels is None else out_channels
        projection_channels = projection_channels or 2 * hidden_channels
        self.lifting = _conv(spatial_dims, in_channels, hidden_channels)

        def block() -> nn.Module:
            if spectral_transform:
                return SpectralTransformBlock(spatial_dims, hidden_channels, fft_axes)
            return nn.Identity()

        self.encoder = block()
        self.layers = nn.Sequential(
            *[
                FourierLayer(
                    hidden_channels,
                    n_modes,
                    factorization,
                    rank,
                    residual=residual,
                    activation=residual or i < n_layers - 1,
                )  # fmt: skip
                for i in range(n_layers)
            ]
        )
        self.decoder = block()
        act = {"relu": nn.ReLU, "gelu": nn.GELU}[projection_act]
        self.projection = nn.Sequential(
            _conv(spatial_dims, hidden_channels, projection_channels), act(),
            _conv(spatial_dims, projection_channels, out_channels),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map the pair ``(batch, 2, *spatial)`` to a displacement ``(batch, out_channels, *spatial)``."""
        x = self.lifting(x)
        x = self.encoder(x)
        x = self.layers(x)
        x = self.decoder(x)
        return self.projection(x)


def fno_baseline(
    spatial_dims: int = 2,
    hidden_channels: int = 16,
    n_layers: int = 6,
    n_modes: Sequence[int] = (40, 48),
    factorization: str | None = None,
    rank: float = 0.42,
) -> FNOReg:
    """The paper's standard FNO baseline: lifting, plain Fourier layers, GELU projection; no spectral transforms."""
    return FNOReg(
        spatial_dims, hidden_channels=hidden_channels, n_layers=n_layers, n_modes=n_modes, spectral_transform=False,
        residual=False, factorization=factorization, rank=rank, projection_act="gelu",
    )  # fmt: skip


class DisplacementFieldNet(nn.Module):
    """Pair -> MONAI dense displacement field (voxel units) for the input's own size.

    Args:
        backbone: network (or a callable that builds it) from ``(batch, 2, *spatial)`` (moving, fixed) to ``(batch, spatial_dims, *spatial)``.
        spatial_dims: 2 or 3.
        units: ``"normalized"``: the backbone predicts displacements in ``[-1, 1]`` grid units (channel ``i`` along
            axis ``i``), converted here to voxels with ``(S_i - 1) / 2``, so the same weights serve every resolution;
            ``"voxel"``: the backbone's output is used as it is.
        output_scale: constant factor on the backbone output.
        init_identity: re-initialise the backbone's last convolution with N(0, 1e-5) weights and zero bias, so
            training starts from (nearly) the identity transform, as VoxelMorph initialises its flow layer.

    Raises:
        ValueError: for an unknown ``units``.
    """  # noqa: E501

    def __init__(
        self,
        backbone: nn.Module | Callable[[], nn.Module],
        spatial_dims: int = 2,
        units: str = "normalized",
        output_scale: float = 1.0,
        init_identity: bool = True,
    ) -> None:
        super().__init__()
        if units not in ("normalized", "voxel"):
            raise ValueError(f"units must be 'normalized' or 'voxel', got {units!r}")
        # a callable (a config's `_mode_: callable` spec) is built here, so the recorded plan holds its arguments
        backbone = backbone if isinstance(backbone, nn.Module) else backbone()
        self.backbone = backbone
        self.spatial_dims = spatial_dims
        self.normalized = units == "normalized"
        self.output_scale = float(output_scale)
        convs = [m for m in backbone.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))]
        if init_identity and convs:
            nn.init.normal_(convs[-1].weight, std=1e-5)
            if convs[-1].bias is not None:
                nn.init.zeros_(convs[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: moving and fixed images as 2 channels; returns the DDF with one channel per spatial axis."""
        phi = self.backbone(x) * self.output_scale
        if not self.normalized:
            return phi
        sizes = x.shape[2:]
        scale = torch.tensor([(float(s) - 1.0) / 2.0 for s in sizes], dtype=phi.dtype, device=phi.device)
        return phi * scale.reshape([1, self.spatial_dims] + [1] * self.spatial_dims)
