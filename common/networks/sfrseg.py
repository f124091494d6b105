"""SFRSeg-Net (Das et al., ICPR 2024): a U-Net-like encoder-decoder whose down-sampling is IEWA-DWT pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .wavelet import IEWADWTDown

__all__ = ["SFRSegNet", "POOLINGS"]

POOLINGS = ("iewa_dwt", "max", "avg")


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by batch normalisation and ReLU (one block of the paper)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _pooling(name: str) -> nn.Module:
    if name == "iewa_dwt":
        return IEWADWTDown(("LL", "LH", "HL"), reduce="sum")
    if name == "max":
        return nn.MaxPool2d(2)
    return nn.AvgPool2d(2)


class _EncoderStage(nn.Module):
    """A conv block whose output is kept as the skip connection, then the down-sampling."""

    def __init__(self, in_channels: int, out_channels: int, pooling: str) -> None:
        super().__init__()
        self.block = _double_conv(in_channels, out_channels)
        self.down = _pooling(pooling)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.block(x)
        return skip, self.down(skip)


class _DecoderStage(nn.Module):
    """2x2 stride-2 transposed convolution, concatenation with the skip, conv block."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.block = _double_conv(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.up(x), skip], dim=1))


class SFRSegNet(nn.Module):
    """SFRSeg-Net: encoder of conv blocks (16, 32, 64, 128 features, 256 bottleneck) separated by IEWA-DWT
    pooling, decoder of transposed convolutions with skip concatenation, 1x1 output convolution (logits).

    ``pooling="max"`` gives the paper's U-Net baseline (its Table 2 "max pooling" row equals its U-Net row):
    the same network with max pooling. Pooling has no parameters, so both variants have the same parameter count.

    Args:
        in_channels: input channels (3: the paper's grey ultrasound replicated to RGB).
        out_channels: output channels (1: logits of synovial fluid; apply a sigmoid for probabilities).
        features: channels of the encoder blocks, the last one being the bottleneck.
        pooling: ``"iewa_dwt"`` (SFRSeg-Net), ``"max"`` (U-Net) or ``"avg"``.

    Input ``(B, in_channels, H, W)`` with ``H`` and ``W`` divisible by ``2 ** (len(features) - 1)`` (16 by default).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        features: Sequence[int] = (16, 32, 64, 128, 256),
        pooling: str = "iewa_dwt",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got '{pooling}'")
        features = tuple(int(f) for f in features)
        if len(features) < 2 or min(features) < 1:
            raise ValueError(f"features needs at least two positive channel counts, got {features}")
        self.divisor = 2 ** (len(features) - 1)
        channels = (in_channels, *features[:-1])
        self.encoder = nn.ModuleList(_EncoderStage(channels[i], features[i], pooling) for i in range(len(features) - 1))
        self.bottleneck = _double_conv(features[-2], features[-1])
        self.decoder = nn.ModuleList(_DecoderStage(features[i + 1], features[i]) for i in reversed(range(len(features) - 1)))
        self.head = nn.Conv2d(features[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.divisor != 0 or x.shape[-2] % self.divisor != 0:
            raise ValueError(
                "SFRSegNet needs height and width divisible by " + str(self.divisor) + ", got "
                + str(x.shape[-2]) + "x" + str(x.shape[-1])
            )  # fmt: skip
        skips: list[torch.Tensor] = []
        for stage in self.encoder:
            skip, x = stage(x)
            skips.append(skip)
        x = self.bottleneck(x)
        for i, stage in enumerate(self.decoder):
            x = stage(x, skips[len(skips) - 1 - i])
        return self.head(x)
