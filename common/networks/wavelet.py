"""Fixed one-level 2D Haar wavelet transform and the IEWA-DWT pooling of SFRSeg-Net (Das et al., ICPR 2024).

Sub-band naming and sign convention
-----------------------------------
The paper's filters are ``f_L = (1, 1) / sqrt(2)`` and ``f_H = (1, -1) / sqrt(2)``, applied first along each row
(across the width), then along each column (across the height) of the two row-filtered bands. The first letter of
a band name is the filter used along the width, the second the filter used along the height. For every 2x2 block
``[[a, b], [c, d]]`` of a channel (``a`` top-left, ``b`` top-right, ``c`` bottom-left, ``d`` bottom-right):

====  ======================  ============================================================
band  coefficient             meaning
====  ======================  ============================================================
LL    ``(a + b + c + d) / 2``  low-pass both ways (local mean x 2)
LH    ``(a + b - c - d) / 2``  low along the width, high along the height: horizontal edges
HL    ``(a - b + c - d) / 2``  high along the width, low along the height: vertical edges
HH    ``(a - b - c + d) / 2``  high-pass both ways: diagonal detail (the paper's "noise")
====  ======================  ============================================================

The transform is orthonormal (energy is preserved) and ``LL + LH + HL + HH = 2a``. IEWA-DWT keeps
``LL + LH + HL`` (the paper's Eq. 6, element-wise sum), i.e. ``2a - HH = (3a + b + c - d) / 2``: a fixed depthwise
2x2 stride-2 convolution with kernel ``[[3, 1], [1, -1]] / 2`` and no learnable parameters.

PyWavelets uses a different convention (``haar`` has ``dec_hi = (-1, 1) / sqrt(2)``, its detail bands are named
``cH, cV, cD``), which flips the signs of the detail bands; with it the same sum becomes the mirrored kernel
``[[-1, 1], [1, 3]] / 2``. Use :func:`haar_dwt2d` here, not PyWavelets, when comparing with this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HAAR_BANDS", "IEWADWTDown", "haar_dwt2d", "haar_kernel"]

HAAR_BANDS: tuple[str, str, str, str] = ("LL", "LH", "HL", "HH")

# coefficients of (a, b, c, d) = (top-left, top-right, bottom-left, bottom-right), before the common factor 1/2
_SIGNS: dict[str, tuple[float, float, float, float]] = {
    "LL": (1.0, 1.0, 1.0, 1.0),
    "LH": (1.0, 1.0, -1.0, -1.0),
    "HL": (1.0, -1.0, 1.0, -1.0),
    "HH": (1.0, -1.0, -1.0, 1.0),
}


def haar_kernel(band: str) -> torch.Tensor:
    """The 2x2 analysis kernel of one Haar sub-band (see the module docstring for the convention).

    Args:
        band: one of ``"LL"``, ``"LH"``, ``"HL"``, ``"HH"``.

    Returns:
        A ``(2, 2)`` float32 tensor ``[[a, b], [c, d]]`` of coefficients, to be applied with stride 2.

    Raises:
        ValueError: unknown band name.
    """
    if band not in _SIGNS:
        raise ValueError(f"unknown Haar sub-band {band!r}; expected one of {HAAR_BANDS}")
    return torch.tensor(_SIGNS[band], dtype=torch.float32).reshape(2, 2) / 2.0


def _check_even_4d(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} expects a (B, C, H, W) tensor, got {x.dim()} dimensions")
    h, w = x.shape[2], x.shape[3]
    if h % 2 != 0 or w % 2 != 0:
        raise ValueError(
            f"{name} needs an even spatial size: height and width must be divisible by 2, got H x W = {h} x {w}"
        )


def haar_dwt2d(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of the orthonormal 2D Haar DWT of every channel.

    Rows are filtered first, then columns, with the paper's ``f_L = (1, 1)/sqrt(2)``, ``f_H = (1, -1)/sqrt(2)``;
    naming and signs are in the module docstring (``LH = (a + b - c - d)/2``, ``HL = (a - b + c - d)/2``).

    Args:
        x: ``(B, C, H, W)`` tensor with even ``H`` and ``W``.

    Returns:
        ``(LL, LH, HL, HH)``, each ``(B, C, H/2, W/2)``.

    Raises:
        ValueError: ``x`` is not 4D, or ``H`` or ``W`` is odd.
    """
    _check_even_4d(x, "haar_dwt2d")
    a = x[:, :, 0::2, 0::2]
    b = x[:, :, 0::2, 1::2]
    c = x[:, :, 1::2, 0::2]
    d = x[:, :, 1::2, 1::2]
    # along the width (rows) first: low = a + b, high = a - b on the top row; c + d, c - d on the bottom row
    top_low, top_high, bottom_low, bottom_high = a + b, a - b, c + d, c - d
    # then along the height (columns) on both row bands
    ll = (top_low + bottom_low) * 0.5
    lh = (top_low - bottom_low) * 0.5
    hl = (top_high + bottom_high) * 0.5
    hh = (top_high - bottom_high) * 0.5
    return ll, lh, hl, hh


class IEWADWTDown(nn.Module):
    """IEWA-DWT down-sampling (Interpretable Element-Wise Additive DWT pooling, the paper's Eq. 5-6).

    Every channel is split into its Haar sub-bands at half resolution; the kept bands are summed (the paper: LL, LH
    and HL, with HH discarded as noise) or, as an ablation, concatenated. The kernels are fixed buffers applied as a
    depthwise stride-2 convolution (``groups=C``), so the block has no parameters and is saved with the model.

    Args:
        bands: sub-bands to keep, distinct names from ``("LL", "LH", "HL", "HH")``, or ``"all"`` for the four
            (with ``reduce="sum"``, ``"all"`` is plain 2x decimation times 2: ``2a``).
        reduce: ``"sum"`` (the paper; ``(B, C, H/2, W/2)``) or ``"concat"`` (``(B, len(bands) * C, H/2, W/2)``,
            band-major: all channels of the first band, then all channels of the second, ... as
            ``torch.cat([LL, LH, HL], dim=1)``).

    Input ``(B, C, H, W)`` with even ``H`` and ``W``. Scriptable with ``torch.jit.script``.

    Raises:
        ValueError: unknown, repeated or no bands; unknown ``reduce``; (in forward) odd ``H`` or ``W``.
    """

    def __init__(self, bands: Sequence[str] | str = ("LL", "LH", "HL"), reduce: str = "sum") -> None:
        super().__init__()
        if isinstance(bands, str):
            if bands != "all":
                raise ValueError(f"bands must be a sequence of sub-band names or 'all', got the string {bands!r}")
            bands = HAAR_BANDS
        bands = tuple(bands)
        unknown = [b for b in bands if b not in HAAR_BANDS]
        if not bands or unknown or len(set(bands)) != len(bands):
            raise ValueError(f"bands must be distinct names from {HAAR_BANDS} (or 'all'), got {bands}")
        if reduce not in ("sum", "concat"):
            raise ValueError(f"reduce must be 'sum' or 'concat', got {reduce!r}")
        self.bands: list[str] = list(bands)
        self.reduce = reduce
        kernels = torch.stack([haar_kernel(b) for b in bands])  # (K, 2, 2)
        if reduce == "sum":
            kernels = kernels.sum(0, keepdim=True)  # one fixed kernel, e.g. [[3, 1], [1, -1]] / 2 for the paper
        self.num_kernels: int = int(kernels.shape[0])
        self.register_buffer("kernels", kernels.unsqueeze(1), persistent=False)  # (K, 1, 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Down-sample ``x`` ``(B, C, H, W)`` by 2 (see the class docstring for the output shape)."""
        _check_even_4d(x, "IEWADWTDown")
        b, channels, h, w = x.shape
        kernels = self.kernels.to(dtype=x.dtype, device=x.device)  # (K, 1, 2, 2)
        # each channel as an image of its own through the same K kernels: the same result as a depthwise conv with
        # the kernels repeated per channel, but with a weight whose shape does not depend on the input (ONNX
        # cannot export a convolution whose kernel shape is computed from the input)
        out = F.conv2d(x.reshape(-1, 1, h, w), kernels, stride=2)  # (B*C, K, H/2, W/2)
        out = out.reshape(b, channels, self.num_kernels, h // 2, w // 2)
        if self.num_kernels > 1:
            out = out.transpose(1, 2)  # band-major
        return out.reshape(b, channels * self.num_kernels, h // 2, w // 2)

    def extra_repr(self) -> str:  # noqa: D102
        return f"bands={tuple(self.bands)}, reduce={self.reduce!r}"
