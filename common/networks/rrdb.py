"""ESRGAN-family super-resolution generator: residual-in-residual dense blocks (RRDB) and pixel-shuffle upsampling.

This is the SRNet ``G`` of the rVTT paper (Tom et al., "Learning a deep convolution network with Turing test
adversaries for microscopy image super resolution"), which follows ESRGAN (Wang et al., 2018). The scale factor
is any product of 2s and 3s (the paper's 4, 9 and 16, also 2, 3, 6, 8, ...): it is factorised into pixel-shuffle
stages of 3 and 2 (9 -> 3,3; 16 -> 2,2,2,2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RRDBGenerator", "ResidualDenseBlock", "ResidualInResidualDenseBlock", "upsampling_stages"]


def upsampling_stages(scale: object) -> list[int]:
    """Factorise a super-resolution scale into pixel-shuffle stages of 3 and 2.

    Args:
        scale: the scale factor; an integer > 1 whose only prime factors are 2 and 3 (a string or float holding
            such an integer is accepted, as config values may be).

    Returns:
        The stages, threes first (``9 -> [3, 3]``, ``16 -> [2, 2, 2, 2]``, ``6 -> [3, 2]``).

    Raises:
        ValueError: naming the value, when it is not numeric, not an integer, <= 1, or has another prime factor.
    """
    try:
        value = float(scale)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a number > 1 (e.g. 4, 9 or 16), got {scale!r}") from None
    if not value > 1:
        raise ValueError(f"scale must be > 1 (e.g. 4, 9 or 16), got {scale!r}")
    if value != int(value):
        raise ValueError(f"scale must be an integer (pixel-shuffle upsampling), got {scale!r}")
    rest, stages = int(value), []
    for factor in (3, 2):
        while rest % factor == 0:
            stages.append(factor)
            rest //= factor
    if rest != 1:
        raise ValueError(f"scale must be a product of 2s and 3s (e.g. 4, 9 or 16), got {scale!r}")
    return stages


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convolutions, each fed with the block input and all earlier outputs; scaled residual.

    Args:
        channels: input and output channels.
        growth: channels added by each of the first four convolutions.
        res_scale: factor of the residual before it is added to the input (ESRGAN: 0.2).
    """

    def __init__(self, channels: int = 64, growth: int = 32, res_scale: float = 0.2) -> None:
        super().__init__()
        self.res_scale = float(res_scale)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels + i * growth, growth if i < 4 else channels, 3, padding=1) for i in range(5)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)
        for conv in self.convs:  # small initial residuals keep the deep stack stable (ESRGAN's scaled init)
            nn.init.kaiming_normal_(conv.weight, a=0.2)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        features = [x]
        out = x
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(features, dim=1))
            if i < 4:
                out = self.act(out)
                features.append(out)
        return x + self.res_scale * out


class ResidualInResidualDenseBlock(nn.Module):
    """Three residual dense blocks inside an outer scaled residual connection.

    Args:
        channels: feature channels.
        growth: growth channels of the dense blocks.
        res_scale: residual scaling of the inner and outer connections.
    """

    def __init__(self, channels: int = 64, growth: int = 32, res_scale: float = 0.2) -> None:
        super().__init__()
        self.res_scale = float(res_scale)
        self.blocks = nn.Sequential(*(ResidualDenseBlock(channels, growth, res_scale) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return x + self.res_scale * self.blocks(x)


class RRDBGenerator(nn.Module):
    """SR generator: first conv, ``num_blocks`` RRDBs with a long skip, pixel-shuffle upsampling, two output convs.

    Input and output are images in [0, 1] (not clamped: the workflows clamp). With ``bicubic_skip`` the network
    predicts a residual added to the bicubic upsampling of the input (a global skip as in VDSR); its last
    convolution then starts at zero, so an untrained network equals bicubic interpolation. This is not in ESRGAN or
    the paper; it is an option that makes short CPU schedules start from the bicubic baseline.

    Args:
        in_channels: input channels (3 for RGB).
        out_channels: output channels.
        scale: scale factor, a product of 2s and 3s (4, 9, 16 in the paper).
        channels: feature channels (ESRGAN: 64).
        growth: dense-block growth channels (ESRGAN: 32).
        num_blocks: number of RRDBs (ESRGAN: 23).
        res_scale: residual scaling (ESRGAN: 0.2).
        bicubic_skip: add the bicubic upsampling of the input to the output.

    Raises:
        ValueError: a bad ``scale`` (see :func:`upsampling_stages`) or non-positive sizes.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        scale: int = 4,
        channels: int = 64,
        growth: int = 32,
        num_blocks: int = 23,
        res_scale: float = 0.2,
        bicubic_skip: bool = False,
    ) -> None:
        super().__init__()
        stages = upsampling_stages(scale)
        if min(in_channels, out_channels, channels, growth) < 1 or num_blocks < 0:
            raise ValueError(
                f"channel counts must be positive and num_blocks >= 0, got in={in_channels} out={out_channels} "
                f"channels={channels} growth={growth} num_blocks={num_blocks}"
            )
        self.scale = int(float(scale))
        self.bicubic_skip = bool(bicubic_skip)
        self.head = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.body = nn.Sequential(
            *(ResidualInResidualDenseBlock(channels, growth, res_scale) for _ in range(num_blocks))
        )
        self.body_tail = nn.Conv2d(channels, channels, 3, padding=1)
        upsample: list[nn.Module] = []
        for factor in stages:
            upsample += [nn.Conv2d(channels, channels * factor * factor, 3, padding=1), nn.PixelShuffle(factor),
                         nn.LeakyReLU(0.2, inplace=True)]  # fmt: skip
        self.upsample = nn.Sequential(*upsample)
        self.tail = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, out_channels, 3, padding=1),
        )
        if self.bicubic_skip:
            if in_channels != out_channels:
                raise ValueError(f"bicubic_skip needs in_channels == out_channels, got {in_channels}, {out_channels}")
            nn.init.zeros_(self.tail[-1].weight)
            nn.init.zeros_(self.tail[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        features = self.head(x)
        features = features + self.body_tail(self.body(features))
        out = self.tail(self.upsample(features))
        if self.bicubic_skip:
            size = [x.shape[2] * self.scale, x.shape[3] * self.scale]
            out = out + F.interpolate(x, size=size, mode="bicubic", align_corners=False)
        return out
