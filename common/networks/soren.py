"""SOREN: the Small Object Representation Enhancement Network of ESORDA (a neck between the FPN and the FCOS head).

The paper's Fig. 5: the top level ``P7`` is upsampled to the size of a low level (``P3``, then ``P4``), an attention
map of each is computed, and the upsampled map's attention (large objects, texture, big normal cells) is subtracted
from the low level's, which leaves the small-object evidence of the low level. A plain net of four residual blocks
turns it into ``P3_ctr``; ``P3`` and ``P3_ctr`` are concatenated into ``F3`` (the same for ``P4`` -> ``F4``). Other
levels pass through.

The paper gives neither the attention operator nor how ``F3`` (twice the channels after the concatenation) meets
the FCOS head, whose convolutions are shared across levels. Decisions: the attention map is a 1x1 convolution and a
sigmoid (one spatial map per level), the subtraction is ``relu(A(P3) - A(P7up)) * P3`` (only where the low level
is more attended than the large-object context), and a 1x1 convolution maps the concatenation back to the FPN width
so that the shared head sees the same channels at every level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SOREN", "ResidualBlock", "SpatialAttention"]


class SpatialAttention(nn.Module):
    """One spatial attention map in ``[0, 1]``: a 1x1 convolution to one channel and a sigmoid.

    Args:
        channels: input channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 1, H, W)`` attention of ``x`` ``(B, C, H, W)``."""
        return torch.sigmoid(self.conv(x))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with group norm and ReLU, added to the input (a plain-net residual block).

    Args:
        channels: input and output channels (a multiple of 8: GroupNorm(8)).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(8, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(8, channels)

    def forward(self, x: Tensor) -> Tensor:
        """``relu(x + norm(conv(relu(norm(conv(x))))))``."""
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(x + self.norm2(self.conv2(y)))


class SOREN(nn.Module):
    """The SOREN neck over FPN levels ``[P3, P4, P5, P6, P7]`` (highest resolution first).

    Args:
        channels: FPN width (every level).
        enhanced_levels: indices of the levels enhanced (``(0, 1)``: P3 and P4, the paper's choice).
        num_blocks: residual blocks of the plain net (the paper: 4).

    Raises:
        ValueError: a negative level index or ``num_blocks < 1``.
    """

    def __init__(self, channels: int, enhanced_levels: tuple[int, ...] = (0, 1), num_blocks: int = 4) -> None:
        super().__init__()
        if any(i < 0 for i in enhanced_levels) or num_blocks < 1:
            raise ValueError(f"enhanced_levels must be >= 0 and num_blocks >= 1, got {enhanced_levels}, {num_blocks}")
        self.enhanced_levels = [int(i) for i in enhanced_levels]
        self.low_attention = nn.ModuleList(SpatialAttention(channels) for _ in self.enhanced_levels)
        self.top_attention = nn.ModuleList(SpatialAttention(channels) for _ in self.enhanced_levels)
        self.plain_nets = nn.ModuleList(
            nn.Sequential(*[ResidualBlock(channels) for _ in range(num_blocks)]) for _ in self.enhanced_levels
        )
        self.fuse = nn.ModuleList(nn.Conv2d(2 * channels, channels, kernel_size=1) for _ in self.enhanced_levels)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """``[F3, F4, P5, P6, P7]`` from ``[P3, P4, P5, P6, P7]`` (every map keeps its shape)."""
        top = features[-1]
        out = [f for f in features]
        k = 0
        for low_att, top_att, plain, fuse in zip(self.low_attention, self.top_attention, self.plain_nets, self.fuse):
            i = self.enhanced_levels[k]
            low = features[i]
            up = F.interpolate(top, size=[low.shape[2], low.shape[3]], mode="nearest")
            small = F.relu(low_att(low) - top_att(up)) * low
            centred = plain(small)
            out[i] = fuse(torch.cat([low, centred], dim=1))
            k += 1
        return out
