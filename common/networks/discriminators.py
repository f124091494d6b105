"""VGG-style critics for the relativistic visual Turing tests (rVTT) T1 (whole images) and T2 (ROI patches).

As in ESRGAN's discriminator (a modified VGG with leaky ReLU and batch normalisation), each stage is a 3x3
convolution followed by a strided 4x4 convolution that halves the resolution. An adaptive average pool makes the
critic accept any input size (whole tiles for T1, small ROI patches for T2), and two linear layers give one raw
score ``C(x)`` per image. The relativistic pair probability ``sigmoid(C(a) - C(b))`` is formed by
:class:`common.losses.RelativisticPairLoss`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["VGGStyleDiscriminator"]


class VGGStyleDiscriminator(nn.Module):
    """VGG-style critic with leaky ReLU, one raw score per input image.

    Args:
        in_channels: image channels.
        base_channels: channels of the first stage; doubled each stage up to ``8 * base_channels``.
        num_stages: number of resolution-halving stages (input sides must be at least ``2 ** num_stages``).
        pooled_size: side of the adaptive average pool before the linear layers.
        hidden: width of the hidden linear layer (ESRGAN: 100).
        batch_norm: use batch normalisation after the convolutions (not after the first).

    Raises:
        ValueError: non-positive sizes.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 32,
        num_stages: int = 4,
        pooled_size: int = 4,
        hidden: int = 100,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if min(in_channels, base_channels, num_stages, pooled_size, hidden) < 1:
            raise ValueError(
                f"sizes must be positive, got in_channels={in_channels} base_channels={base_channels} "
                f"num_stages={num_stages} pooled_size={pooled_size} hidden={hidden}"
            )
        layers: list[nn.Module] = []
        channels_in = in_channels
        for stage in range(num_stages):
            channels = base_channels * min(2**stage, 8)
            for kernel, stride in ((3, 1), (4, 2)):
                layers.append(nn.Conv2d(channels_in, channels, kernel, stride, padding=1, bias=not batch_norm))
                if batch_norm and not (stage == 0 and stride == 1):
                    layers.append(nn.BatchNorm2d(channels))
                elif batch_norm:
                    layers[-1] = nn.Conv2d(channels_in, channels, kernel, stride, padding=1, bias=True)
                layers.append(nn.LeakyReLU(0.2, inplace=True))
                channels_in = channels
        self.features = nn.Sequential(*layers)
        self.min_size = 2**num_stages
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(pooled_size),
            nn.Flatten(),
            nn.Linear(channels_in * pooled_size * pooled_size, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw critic scores ``C(x)`` of shape ``(B,)``."""
        if x.shape[-1] < self.min_size or x.shape[-2] < self.min_size:
            raise ValueError(f"input of {tuple(x.shape[-2:])} pixels is below the critic's minimum {self.min_size}")
        return self.classifier(self.features(x)).flatten()
