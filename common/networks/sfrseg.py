"""SFRSeg-Net (Das et al., ICPR 2024): a U-Net-like encoder-decoder whose down-sampling is IEWA-DWT pooling.

Layout for the default ``features=(16, 32, 64, 128, 256)`` and a 128x128 input:

- encoder: four blocks of two (conv 3x3, BatchNorm, ReLU) with 16, 32, 64 and 128 channels, each followed by the
  down-sampling (IEWA-DWT in the paper), 128 -> 64 -> 32 -> 16 -> 8 pixels;
- bottleneck: the same block with 256 channels at 8x8;
- decoder: four stages of (transposed conv 2x2 stride 2, concatenation with the encoder block output of the same
  size, two conv-BN-ReLU), back to 128x128 with 16 channels;
- head: 1x1 convolution to ``out_channels`` logits. The paper's sigmoid is left to the loss / post-processing.

Choices where the paper is silent (see the bundle README): 2x2 stride-2 transposed convolutions that halve the
channels, BatchNorm in the decoder blocks as in the encoder, no bias in convolutions followed by BatchNorm.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import Convolution
from torch import nn

from .wavelet import IEWADWTDown

__all__ = ["POOLINGS", "SFRSegNet"]

POOLINGS: tuple[str, str, str] = ("iewa_dwt", "max", "avg")


def _conv_bn_relu(in_channels: int, out_channels: int) -> Convolution:
    return Convolution(
        spatial_dims=2,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=3,
        act="relu",
        norm="batch",
        bias=False,
        adn_ordering="NA",  # conv -> BatchNorm -> ReLU
    )


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """One block of the paper: two 3x3 convolutions, each followed by batch normalisation and ReLU."""
    return nn.Sequential(_conv_bn_relu(in_channels, out_channels), _conv_bn_relu(out_channels, out_channels))


def _pooling(name: str) -> nn.Module:
    if name == "iewa_dwt":
        return IEWADWTDown(("LL", "LH", "HL"), reduce="sum")
    if name == "max":
        return nn.MaxPool2d(kernel_size=2, stride=2)
    return nn.AvgPool2d(kernel_size=2, stride=2)


class _EncoderStage(nn.Module):
    """A conv block, whose output is kept as the skip connection, followed by the 2x down-sampling."""

    def __init__(self, in_channels: int, out_channels: int, pooling: str) -> None:
        super().__init__()
        self.block = _double_conv(in_channels, out_channels)
        self.down = _pooling(pooling)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.block(x)
        return skip, self.down(skip)


class _DecoderStage(nn.Module):
    """2x2 stride-2 transposed convolution, concatenation with the skip connection, conv block."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.block = _double_conv(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.up(x), skip], dim=1))


class SFRSegNet(nn.Module):
    """SFRSeg-Net for binary (or multi-channel) 2D segmentation; outputs logits.

    ``pooling="max"`` is the paper's U-Net baseline: the same network with max pooling (the paper's Table 2
    "max pooling" row equals its U-Net row). No pooling option has parameters, so all variants have the same
    parameters and state-dict keys.

    Args:
        in_channels: input channels (3: the paper's grey ultrasound replicated to RGB).
        out_channels: output channels (1: synovial fluid logits; apply a sigmoid for probabilities).
        features: channels of the encoder blocks, the last being the bottleneck; ``len(features) - 1``
            down-samplings.
        pooling: ``"iewa_dwt"`` (SFRSeg-Net), ``"max"`` (U-Net baseline) or ``"avg"``.

    Input ``(B, in_channels, H, W)`` with ``H`` and ``W`` divisible by ``2 ** (len(features) - 1)`` (16 by
    default); output ``(B, out_channels, H, W)``. Scriptable with ``torch.jit.script``.

    Raises:
        ValueError: unknown ``pooling``, fewer than two or non-positive ``features``, non-positive channel counts;
            (in forward) wrong input rank, channel count or spatial size.
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
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be positive, got {in_channels} and {out_channels}")
        features = tuple(int(f) for f in features)
        if len(features) < 2 or min(features) < 1:
            raise ValueError(
                f"features needs at least two positive channel counts (blocks + bottleneck), got {features}"
            )
        self.in_channels = int(in_channels)
        self.pooling = pooling
        self.divisor: int = 2 ** (len(features) - 1)
        inputs = (in_channels, *features[:-2])
        self.encoder = nn.ModuleList(_EncoderStage(c_in, c_out, pooling) for c_in, c_out in zip(inputs, features[:-1]))
        self.bottleneck = _double_conv(features[-2], features[-1])
        self.decoder = nn.ModuleList(
            _DecoderStage(features[i + 1], features[i]) for i in reversed(range(len(features) - 1))
        )
        self.head = nn.Conv2d(features[0], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, out_channels, H, W)`` of ``x`` ``(B, in_channels, H, W)``."""
        if x.dim() != 4:
            raise ValueError(f"SFRSegNet expects a (B, C, H, W) tensor, got {x.dim()} dimensions")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"SFRSegNet was built for {self.in_channels} input channels, got {x.shape[1]}")
        h, w = x.shape[2], x.shape[3]
        if h % self.divisor != 0 or w % self.divisor != 0:
            raise ValueError(
                f"SFRSegNet needs height and width divisible by {self.divisor} "
                f"(2 ** number of down-samplings), got H x W = {h} x {w}"
            )
        skips: list[torch.Tensor] = []
        for stage in self.encoder:
            skip, x = stage(x)
            skips.append(skip)
        x = self.bottleneck(x)
        for i, stage in enumerate(self.decoder):
            x = stage(x, skips[len(skips) - 1 - i])
        return self.head(x)

    def extra_repr(self) -> str:  # noqa: D102
        return f"pooling={self.pooling!r}"
