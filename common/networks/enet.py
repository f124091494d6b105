"""E-Net (Paszke, Chaurasia, Kim, Culurciello, 2016, "ENet: A Deep Neural Network Architecture for Real-Time
Semantic Segmentation", arXiv:1606.02147).

The network Breznik et al. (ICPR 2024) train with point annotations and a boundary loss. The layout follows the
paper's Table 1 (input ``H x W``):

============  ===========================================================  ==================
stage         blocks                                                       output
============  ===========================================================  ==================
initial       3x3 stride-2 convolution (``16 - in_channels`` filters)       16 x H/2 x W/2
              concatenated with a 2x2 max-pool of the input
1             down-sampling bottleneck, 4 regular bottlenecks              64 x H/4 x W/4
2             down-sampling bottleneck, then regular, dilated 2,           128 x H/8 x W/8
              asymmetric 5, dilated 4, regular, dilated 8, asymmetric 5,
              dilated 16
3             stage 2 without its down-sampling bottleneck                 128 x H/8 x W/8
4             up-sampling bottleneck, 2 regular bottlenecks                64 x H/4 x W/4
5             up-sampling bottleneck, 1 regular bottleneck                 16 x H/2 x W/2
full conv     3x3 stride-2 transposed convolution                          C x H x W
============  ===========================================================  ==================

Every bottleneck is a residual unit: a 1x1 projection to a quarter of the channels (a 2x2 stride-2 convolution in
down-sampling bottlenecks), the main convolution (3x3, dilated 3x3, 5x1 followed by 1x5, or a 3x3 stride-2
transposed convolution when up-sampling), a 1x1 expansion, batch normalisation after every convolution, PReLU
(one slope per channel) after each of the first two, and spatial dropout (``nn.Dropout2d``) at the end of the
branch: ``dropout_initial`` up to and including stage 1 (paper: 0.01), ``dropout`` afterwards (paper: 0.1). The
shortcut of a down-sampling bottleneck is a 2x2 max-pool whose indices are kept, zero-padded to the new channel
count; the shortcut of an up-sampling bottleneck is a 1x1 convolution followed by max-unpooling with the indices
of the matching down-sampling bottleneck. Convolutions have no bias, except the final one.

Choices the paper leaves open: PReLU is used in the decoder too (the paper says PReLU throughout; the authors'
Torch code used ReLU in the decoder), and the final full convolution is 3x3 (the Torch code used 2x2).

The module is TorchScript-scriptable (``torch.jit.script``), as MONAI's ``ckpt_export`` requires.
"""  # noqa: D205

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ENet"]

_INITIAL_CHANNELS = 16


def _conv_bn_prelu(conv: nn.Module, channels: int) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(channels), nn.PReLU(channels)]


class _InitialBlock(nn.Module):
    """``PReLU(BN(cat(conv3x3_stride2(x), maxpool2x2(x))))`` with ``out_channels`` channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool2d(x, kernel_size=2, stride=2)
        return self.act(self.norm(torch.cat([self.conv(x), pooled], dim=1)))


class _Bottleneck(nn.Module):
    """Regular, dilated or asymmetric bottleneck keeping ``channels`` and the spatial size."""

    def __init__(self, channels: int, dropout: float, dilation: int = 1, asymmetric: int = 0) -> None:
        super().__init__()
        inner = channels // 4
        if asymmetric:
            pad = asymmetric // 2
            main: nn.Module = nn.Sequential(
                nn.Conv2d(inner, inner, (asymmetric, 1), padding=(pad, 0), bias=False),
                nn.Conv2d(inner, inner, (1, asymmetric), padding=(0, pad), bias=False),
            )
        else:
            main = nn.Conv2d(inner, inner, 3, padding=dilation, dilation=dilation, bias=False)
        self.branch = nn.Sequential(
            *_conv_bn_prelu(nn.Conv2d(channels, inner, 1, bias=False), inner),
            *_conv_bn_prelu(main, inner),
            nn.Conv2d(inner, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.branch(x))


class _DownBottleneck(nn.Module):
    """Halves the spatial size; returns the output and the max-pool indices (for the decoder's unpooling)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        inner = in_channels // 4
        self.pad_channels = out_channels - in_channels
        self.branch = nn.Sequential(
            *_conv_bn_prelu(nn.Conv2d(in_channels, inner, 2, stride=2, bias=False), inner),
            *_conv_bn_prelu(nn.Conv2d(inner, inner, 3, padding=1, bias=False), inner),
            nn.Conv2d(inner, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, indices = F.max_pool2d_with_indices(x, kernel_size=2, stride=2)
        shortcut = F.pad(pooled, [0, 0, 0, 0, 0, self.pad_channels])
        return self.act(shortcut + self.branch(x)), indices


class _UpBottleneck(nn.Module):
    """Doubles the spatial size, unpooling with the indices of the matching down-sampling bottleneck."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        inner = in_channels // 4
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        up = nn.ConvTranspose2d(inner, inner, 3, stride=2, padding=1, output_padding=1, bias=False)
        self.branch = nn.Sequential(
            *_conv_bn_prelu(nn.Conv2d(in_channels, inner, 1, bias=False), inner),
            *_conv_bn_prelu(up, inner),
            nn.Conv2d(inner, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        # 2x2 stride-2 max-unpooling as a scatter of each value to its recorded position in a zero map twice the
        # size: what F.max_unpool2d computes, but in operators the ONNX exporter can trace (max_unpool2d checks its
        # output size with shape arithmetic the tracer turns into tensors)
        y = self.shortcut(x)
        b, c, h, w = indices.shape
        flat = y.new_zeros(b, c, 4 * h * w).scatter(2, indices.reshape(b, c, h * w), y.reshape(b, c, h * w))
        shortcut = flat.reshape(b, c, 2 * h, 2 * w)
        return self.act(shortcut + self.branch(x))


def _stage_2_or_3(dropout: float) -> nn.Sequential:
    """The eight 128-channel bottlenecks shared by stages 2 and 3 (paper, Table 1)."""
    return nn.Sequential(
        _Bottleneck(128, dropout),
        _Bottleneck(128, dropout, dilation=2),
        _Bottleneck(128, dropout, asymmetric=5),
        _Bottleneck(128, dropout, dilation=4),
        _Bottleneck(128, dropout),
        _Bottleneck(128, dropout, dilation=8),
        _Bottleneck(128, dropout, asymmetric=5),
        _Bottleneck(128, dropout, dilation=16),
    )


class ENet(nn.Module):
    """E-Net for 2D semantic segmentation (about 0.36 M parameters).

    Args:
        in_channels: input channels, 1 to 15 (the initial block's convolution makes ``16 - in_channels`` maps
            and the max-pooled input supplies the rest).
        out_channels: number of classes (logit maps).
        dropout_initial: spatial dropout probability up to and including stage 1 (paper: 0.01).
        dropout: spatial dropout probability of stages 2 to 5 (paper: 0.1).

    Raises:
        ValueError: for channel counts or dropout probabilities out of range.

    Example:
        >>> net = ENet(in_channels=1, out_channels=4)
        >>> net(torch.zeros(2, 1, 128, 128)).shape
        torch.Size([2, 4, 128, 128])
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 4, dropout_initial: float = 0.01, dropout: float = 0.1
    ) -> None:
        super().__init__()
        if not 1 <= in_channels < _INITIAL_CHANNELS:
            raise ValueError(
                f"ENet needs 1 <= in_channels < {_INITIAL_CHANNELS} (the initial block concatenates "
                f"{_INITIAL_CHANNELS} - in_channels convolution maps with the pooled input), got {in_channels}"
            )
        if out_channels < 1:
            raise ValueError(f"ENet needs out_channels >= 1, got {out_channels}")
        for name, p in (("dropout_initial", dropout_initial), ("dropout", dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"ENet needs 0 <= {name} < 1, got {p}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.initial = _InitialBlock(in_channels, _INITIAL_CHANNELS)
        self.down1 = _DownBottleneck(_INITIAL_CHANNELS, 64, dropout_initial)
        self.stage1 = nn.Sequential(*[_Bottleneck(64, dropout_initial) for _ in range(4)])
        self.down2 = _DownBottleneck(64, 128, dropout)
        self.stage2 = _stage_2_or_3(dropout)
        self.stage3 = _stage_2_or_3(dropout)
        self.up4 = _UpBottleneck(128, 64, dropout)
        self.stage4 = nn.Sequential(_Bottleneck(64, dropout), _Bottleneck(64, dropout))
        self.up5 = _UpBottleneck(64, _INITIAL_CHANNELS, dropout)
        self.stage5 = _Bottleneck(_INITIAL_CHANNELS, dropout)
        self.full_conv = nn.ConvTranspose2d(_INITIAL_CHANNELS, out_channels, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, out_channels, H, W)`` of an input ``(B, in_channels, H, W)``, ``H`` and ``W`` divisible by 8.

        Raises:
            ValueError: for an input that is not 4D, has the wrong channel count, or a size not divisible by 8.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                "ENet expects input (B, {}, H, W), got shape {}".format(self.in_channels, list(x.shape))  # noqa: UP032
            )
        if x.shape[-2] % 8 != 0 or x.shape[-1] % 8 != 0:
            raise ValueError(
                "ENet needs height and width divisible by 8 (three 2x down-samplings), got {}x{}".format(  # noqa: UP032
                    x.shape[-2], x.shape[-1]
                )
            )
        x = self.initial(x)
        x, indices1 = self.down1(x)
        x = self.stage1(x)
        x, indices2 = self.down2(x)
        x = self.stage3(self.stage2(x))
        x = self.stage4(self.up4(x, indices2))
        x = self.stage5(self.up5(x, indices1))
        return self.full_conv(x)
