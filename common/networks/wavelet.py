"""Fixed Haar wavelet blocks, including the IEWA-DWT pooling of SFRSeg-Net (Das et al., ICPR 2024).

Sub-band convention. With the paper's filters ``f_L = (1, 1)/sqrt(2)`` and ``f_H = (1, -1)/sqrt(2)`` applied along
the width first, then along the height, a 2x2 block ``[[a, b], [c, d]]`` (``a`` top-left) gives

- ``LL = (a + b + c + d) / 2``  low-pass both ways
- ``LH = (a + b - c - d) / 2``  low-pass along the width, high-pass along the height (horizontal edges)
- ``HL = (a - b + c - d) / 2``  high-pass along the width, low-pass along the height (vertical edges)
- ``HH = (a - b - c + d) / 2``  high-pass both ways (diagonal detail, treated as noise by the paper)

IEWA-DWT keeps ``LL + LH + HL`` (Eq. 6, element-wise sum), which is ``(3a + b + c - d) / 2``: a fixed depthwise
2x2 stride-2 convolution with no learnable parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HAAR_BANDS", "haar_dwt2d", "IEWADWTDown"]

HAAR_BANDS = ("LL", "LH", "HL", "HH")
_KERNELS = {
    "LL": ((1.0, 1.0), (1.0, 1.0)),
    "LH": ((1.0, 1.0), (-1.0, -1.0)),
    "HL": ((1.0, -1.0), (1.0, -1.0)),
    "HH": ((1.0, -1.0), (-1.0, 1.0)),
}


def _band_kernels(bands: Sequence[str]) -> torch.Tensor:
    return torch.tensor([_KERNELS[b] for b in bands], dtype=torch.float32) / 2.0


def _check_even(x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    if x.shape[2] % 2 or x.shape[3] % 2:
        raise ValueError(f"Haar DWT needs even height and width (divisible by 2), got {x.shape[2]}x{x.shape[3]}")


def haar_dwt2d(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One level of the 2D Haar DWT of every channel: ``(LL, LH, HL, HH)``, each ``(B, C, H/2, W/2)``.

    Args:
        x: ``(B, C, H, W)`` with even ``H`` and ``W``.
    """
    _check_even(x)
    c = x.shape[1]
    weight = _band_kernels(HAAR_BANDS).to(x).repeat(c, 1, 1).unsqueeze(1)  # (4C, 1, 2, 2), channel-major
    bands = F.conv2d(x, weight, stride=2, groups=c).unflatten(1, (c, 4))
    return bands[:, :, 0], bands[:, :, 1], bands[:, :, 2], bands[:, :, 3]


class IEWADWTDown(nn.Module):
    """IEWA-DWT down-sampling: Haar sub-bands of every channel, HH dropped, the rest summed (or concatenated).

    Args:
        bands: sub-bands to keep, from ``("LL", "LH", "HL", "HH")``, or ``"all"``; the paper keeps LL, LH, HL.
        reduce: ``"sum"`` (the paper, Eq. 6: same channel count) or ``"concat"`` (ablation: ``len(bands)`` times
            the channels, ordered channel by channel).

    Input ``(B, C, H, W)`` with even ``H``, ``W``; output ``(B, C, H/2, W/2)`` (``sum``). No parameters: the
    kernels are buffers, so the block is exported with the model and never trained.
    """

    def __init__(self, bands: Sequence[str] | str = ("LL", "LH", "HL"), reduce: str = "sum") -> None:
        super().__init__()
        bands = HAAR_BANDS if bands == "all" else tuple(bands)
        unknown = [b for b in bands if b not in HAAR_BANDS]
        if unknown or not bands or len(set(bands)) != len(bands):
            raise ValueError(f"bands must be distinct names from {HAAR_BANDS} (or 'all'), got {bands}")
        if reduce not in ("sum", "concat"):
            raise ValueError(f"reduce must be 'sum' or 'concat', got '{reduce}'")
        self.bands = bands
        self.reduce = reduce
        kernels = _band_kernels(bands)
        self.register_buffer("kernels", kernels.sum(0, keepdim=True) if reduce == "sum" else kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError("IEWADWTDown expects a (B, C, H, W) tensor")
        if x.shape[2] % 2 != 0 or x.shape[3] % 2 != 0:
            raise ValueError(
                "IEWADWTDown needs even height and width (divisible by 2), got "
                + str(x.shape[2]) + "x" + str(x.shape[3])
            )  # fmt: skip
        c = x.shape[1]
        weight = self.kernels.repeat(c, 1, 1).unsqueeze(1)
        return F.conv2d(x, weight, stride=2, groups=c)

    def extra_repr(self) -> str:
        return f"bands={self.bands}, reduce={self.reduce}"
