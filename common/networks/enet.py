"""E-Net (Paszke et al., 2016, "ENet: A Deep Neural Network Architecture for Real-Time Semantic Segmentation").

The network Breznik et al. (ICPR 2024) train with point annotations and boundary loss. Layout of the paper's
Table 1: an initial block (3x3 stride-2 convolution concatenated with a max-pool of the input), stage 1 (a
down-sampling bottleneck to 64 channels and four regular ones), stages 2 and 3 (128 channels: regular, dilated
2/4/8/16 and asymmetric 5x1/1x5 bottlenecks; only stage 2 down-samples), stages 4 and 5 (up-sampling bottlenecks
that max-unpool with the indices stored by the matching down-sampling), and a full transposed convolution to the
classes. Encoder bottlenecks use PReLU, decoder ones ReLU (as in the authors' reference implementation), spatial
dropout 0.01 in stage 1 and 0.1 afterwards.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ENet"]


def _activation(channels: int, prelu: bool) -> nn.Module:
    return nn.PReLU(channels) if prelu else nn.ReLU()


class _InitialBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int = 16) -> None:
        super().__init__()
        if in_channels >= out_channels:
            raise ValueError(f"E-Net's initial block needs in_channels < {out_channels}, got {in_channels}")
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(torch.cat([self.conv(x), F.max_pool2d(x, 2, 2)], dim=1)))


class _Bottleneck(nn.Module):
    """Regular, dilated or asymmetric bottleneck: 1x1 projection, main convolution, 1x1 expansion, residual."""

    def __init__(
        self, channels: int, kind: str = "regular", dilation: int = 1, dropout: float = 0.1, prelu: bool = True
    ) -> None:
        super().__init__()
        inner = channels // 4
        if kind == "asymmetric":
            main: nn.Module = nn.Sequential(
                nn.Conv2d(inner, inner, (5, 1), padding=(2, 0), bias=False),
                nn.Conv2d(inner, inner, (1, 5), padding=(0, 2), bias=False),
            )
        else:
            main = nn.Conv2d(inner, inner, 3, padding=dilation, dilation=dilation, bias=False)
        self.branch = nn.Sequential(
            nn.Conv2d(channels, inner, 1, bias=False),
            nn.BatchNorm2d(inner),
            _activation(inner, prelu),
            main,
            nn.BatchNorm2d(inner),
            _activation(inner, prelu),
            nn.Conv2d(inner, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.Dropout2d(dropout),
        )
        self.act = _activation(channels, prelu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.branch(x))


class _DownBottleneck(nn.Module):
    """Down-sampling bottleneck: max-pool (indices kept) with zero channel padding, plus a strided branch."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        inner = in_channels // 4 if in_channels >= 4 else 1
        self.extra_channels = out_channels - in_channels
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, inner, 2, stride=2, bias=False),
            nn.BatchNorm2d(inner),
            nn.PReLU(inner),
            nn.Conv2d(inner, inner, 3, padding=1, bias=False),
            nn.BatchNorm2d(inner),
            nn.PReLU(inner),
            nn.Conv2d(inner, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        main, indices = F.max_pool2d_with_indices(x, kernel_size=2, stride=2)
        b, _, h, w = main.shape
        main = torch.cat([main, main.new_zeros(b, self.extra_channels, h, w)], dim=1)
        return self.act(main + self.branch(x)), indices


class _UpBottleneck(nn.Module):
    """Up-sampling bottleneck: 1x1 convolution and max-unpooling with stored indices, plus a transposed branch."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        inner = in_channels // 4
        self.main = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.branch = nn.Sequential(
            nn.Conv2d(in_channels, inner, 1, bias=False),
            nn.BatchNorm2d(inner),
            nn.ReLU(),
            nn.ConvTranspose2d(inner, inner, 2, stride=2, bias=False),
            nn.BatchNorm2d(inner),
            nn.ReLU(),
            nn.Conv2d(inner, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, indices: torch.Tensor, output_size: list[int]) -> torch.Tensor:
        main = F.max_unpool2d(self.main(x), indices, kernel_size=2, stride=2, output_size=output_size)
        return self.act(main + self.branch(x))


def _stage_2_3(dropout: float) -> nn.Sequential:
    """The eight bottlenecks shared by stages 2 and 3 (paper, Table 1)."""
    return nn.Sequential(
        _Bottleneck(128, dropout=dropout),
        _Bottleneck(128, dilation=2, dropout=dropout),
        _Bottleneck(128, kind="asymmetric", dropout=dropout),
        _Bottleneck(128, dilation=4, dropout=dropout),
        _Bottleneck(128, dropout=dropout),
        _Bottleneck(128, dilation=8, dropout=dropout),
        _Bottleneck(128, kind="asymmetric", dropout=dropout),
        _Bottleneck(128, dilation=16, dropout=dropout),
    )


class ENet(nn.Module):
    """E-Net for 2D semantic segmentation; returns logits ``(B, out_channels, H, W)``.

    Args:
        in_channels: input channels (1 for MRI; must be below 16, the width of the initial block).
        out_channels: number of classes.
        dropout_initial: spatial dropout of stage 1 (paper: 0.01).
        dropout: spatial dropout of the later stages (paper: 0.1).

    ``H`` and ``W`` must be divisible by 8 (three 2x down-samplings).
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 4, dropout_initial: float = 0.01, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.initial = _InitialBlock(in_channels, 16)
        self.down1 = _DownBottleneck(16, 64, dropout_initial)
        self.stage1 = nn.Sequential(*[_Bottleneck(64, dropout=dropout_initial) for _ in range(4)])
        self.down2 = _DownBottleneck(64, 128, dropout)
        self.stage2 = _stage_2_3(dropout)
        self.stage3 = _stage_2_3(dropout)
        self.up4 = _UpBottleneck(128, 64, dropout)
        self.stage4 = nn.Sequential(_Bottleneck(64, dropout=dropout, prelu=False), _Bottleneck(64, dropout=dropout, prelu=False))
        self.up5 = _UpBottleneck(64, 16, dropout)
        self.stage5 = _Bottleneck(16, dropout=dropout, prelu=False)
        self.full_conv = nn.ConvTranspose2d(16, out_channels, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 8 != 0 or x.shape[-2] % 8 != 0:
            raise ValueError("ENet needs height and width divisible by 8, got " + str(x.shape[-2]) + "x" + str(x.shape[-1]))
        x = self.initial(x)
        size1 = [x.shape[-2], x.shape[-1]]
        x, indices1 = self.down1(x)
        x = self.stage1(x)
        size2 = [x.shape[-2], x.shape[-1]]
        x, indices2 = self.down2(x)
        x = self.stage3(self.stage2(x))
        x = self.stage4(self.up4(x, indices2, size2))
        x = self.stage5(self.up5(x, indices1, size1))
        return self.full_conv(x)
