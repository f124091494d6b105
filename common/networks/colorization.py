"""Colorization GAN for grey radiographs: a self-attention U-Net generator on a ResNet encoder, and a discriminator.

Paper (class-aware attention lesion detection, Sec. 3.2): the generator of a self-attention GAN (Zhang et al.,
SAGAN) with a ResNet-34 feature extractor colorizes a grey image; a discriminator tells real colour images from
colorized ones; both are trained on colour photographs converted to grey. The paper gives no layer list, so the
generator is the usual DeOldify-style layout: the ResNet's stem and four stages as the encoder (input: the grey
image repeated to RGB, so local ImageNet weights load by name), a decoder of upsampling blocks with skip
connections, SAGAN self-attention on the stride-8 decoder block, and a sigmoid RGB output. The discriminator is a
SAGAN-style spectral-normalised convolution stack with self-attention on its stride-8 maps; it returns one logit per
image and its intermediate maps (the feature-map term of Eq. 4, :class:`common.losses.ColorizationGeneratorLoss`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.nets import ResNet
from monai.networks.nets.resnet import get_inplanes
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

from .skin_classifiers import load_pretrained_weights

__all__ = ["COLORIZER_ENCODERS", "ColorizationDiscriminator", "ColorizationGenerator", "SelfAttention2d"]

COLORIZER_ENCODERS: dict[int, list[int]] = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}
"""Basic-block counts of the generator's ResNet encoder by depth (the paper: ResNet-34)."""


class SelfAttention2d(nn.Module):
    """SAGAN self-attention: ``x + gamma * softmax(q^T k) v`` over all positions, ``gamma`` starting at 0.

    Args:
        channels: input channels.
        reduction: query/key channel reduction (SAGAN: 8).
        spectral: spectral-normalise the 1x1 projections (the discriminator).
    """

    def __init__(self, channels: int, reduction: int = 8, spectral: bool = False) -> None:
        super().__init__()
        inner = max(1, channels // reduction)

        def conv(cin: int, cout: int) -> nn.Module:
            layer = nn.Conv2d(cin, cout, 1)
            return spectral_norm(layer) if spectral else layer

        self.query, self.key, self.value = conv(channels, inner), conv(channels, inner), conv(channels, channels)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        """Attend over every position of ``(B, C, H, W)``."""
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, N, C')
        k = self.key(x).flatten(2)  # (B, C', N)
        attention = torch.softmax(torch.bmm(q, k), dim=-1)  # (B, N, N)
        v = self.value(x).flatten(2)  # (B, C, N)
        out = torch.bmm(v, attention.transpose(1, 2)).view(b, c, h, w)
        return x + self.gamma * out


class _UpBlock(nn.Module):
    def __init__(self, cin: int, skip: int, cout: int, attention: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin + skip, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )
        self.attention = SelfAttention2d(cout) if attention else nn.Identity()

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.attention(self.conv(torch.cat([x, skip], dim=1)))


class ColorizationGenerator(nn.Module):
    """Grey ``(B, 1, H, W)`` in ``[0, 1]`` -> RGB ``(B, 3, H, W)`` in ``[0, 1]`` (U-Net on a ResNet encoder).

    Args:
        encoder_depth: 18 or 34 (:data:`COLORIZER_ENCODERS`; the paper: 34).
        decoder_width: channels of the last decoder block (doubled per coarser block).
        weights_path: optional local ResNet state dict for the encoder (nothing is downloaded).

    Raises:
        ValueError: unsupported ``encoder_depth``.
    """

    def __init__(self, encoder_depth: int = 34, decoder_width: int = 32, weights_path: str | Path | None = None):
        super().__init__()
        if encoder_depth not in COLORIZER_ENCODERS:
            raise ValueError(f"unsupported encoder depth {encoder_depth}; choose one of {sorted(COLORIZER_ENCODERS)}")
        self.encoder = ResNet(
            "basic",
            COLORIZER_ENCODERS[encoder_depth],
            get_inplanes(),
            spatial_dims=2,
            n_input_channels=3,
            conv1_t_size=7,
            conv1_t_stride=2,
            bias_downsample=False,
            feed_forward=False,
        )
        if weights_path is not None:
            load_pretrained_weights(self.encoder, weights_path)
        w = int(decoder_width)
        # encoder maps: stem 64 (/2), layer1 64 (/4), layer2 128 (/8), layer3 256 (/16), layer4 512 (/32)
        self.up4 = _UpBlock(512, 256, 8 * w)
        self.up3 = _UpBlock(8 * w, 128, 4 * w, attention=True)
        self.up2 = _UpBlock(4 * w, 64, 2 * w)
        self.up1 = _UpBlock(2 * w, 64, w)
        self.up0 = _UpBlock(w, 3, w)
        self.out = nn.Conv2d(w, 3, 1)

    def forward(self, grey: Tensor) -> Tensor:
        """Colorize ``(B, 1, H, W)`` (H and W multiples of 32)."""
        x = grey.repeat(1, 3, 1, 1) if grey.shape[1] == 1 else grey
        e = self.encoder
        s0 = e.act(e.bn1(e.conv1(x)))
        s1 = e.layer1(e.maxpool(s0))
        s2 = e.layer2(s1)
        s3 = e.layer3(s2)
        s4 = e.layer4(s3)
        y = self.up4(s4, s3)
        y = self.up3(y, s2)
        y = self.up2(y, s1)
        y = self.up1(y, s0)
        y = self.up0(y, x)
        return torch.sigmoid(self.out(y))


class ColorizationDiscriminator(nn.Module):
    """SAGAN-style discriminator: RGB ``(B, 3, H, W)`` -> one logit per image, and its intermediate maps.

    Args:
        width: channels of the first convolution (doubled at every stride-2 block).
        blocks: stride-2 blocks (self-attention after the third).
    """

    def __init__(self, width: int = 32, blocks: int = 4) -> None:
        super().__init__()
        layers, cin = [], 3
        for k in range(blocks):
            cout = width * 2**k
            layers.append(
                nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True))
            )
            if k == 2:
                layers.append(SelfAttention2d(cout, spectral=True))
            cin = cout
        self.blocks = nn.ModuleList(layers)
        self.out = spectral_norm(nn.Conv2d(cin, 1, 3, padding=1))

    def forward(self, rgb: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(logits (B,), [intermediate maps])``: the logit is the mean of the patch logits."""
        features, x = [], rgb
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.out(x).mean(dim=(1, 2, 3)), features
