"""Generative networks for data augmentation (Kanekar et al., "Classification of Cutaneous Diseases", ICPR 2024).

The paper augments 35 training images per class with images drawn from a Wasserstein GAN (its Eq. 2) and from a
convolutional autoencoder (its Eqs. 3-8) but gives no architecture. The choices here (documented decisions):

- :class:`WGANGenerator` / :class:`WGANCritic`: DCGAN-style (Radford et al.) stacks of stride-2 4x4 (transposed)
  convolutions for square images whose side is a power of two (32..512). The generator ends with ``tanh`` (images in
  [-1, 1]); the critic outputs one unbounded score per image: no sigmoid (the Wasserstein critic is not a
  classifier) and no batch normalisation (the gradient penalty is defined per sample, which batch statistics would
  couple); a per-sample layer norm (``GroupNorm`` with one group, i.e. over C, H, W) or no normalisation instead.
- :class:`ConvAutoencoder`: stride-2 3x3 convolutions + ReLU down to a ``latent_channels`` map at
  ``image_size / 2**depth`` (the feature space ``y = ReLU(w x + b)``, Eq. 7), transposed convolutions + ReLU back
  up, the last one also followed by ReLU as Eq. 8 writes it (``z = ReLU(w' y + b')``; its bias starts at 0.5 so the
  output ReLU starts active). The loss is the mean
  squared reconstruction error (Eqs. 5-6; the per-value mean differs from the paper's per-image sum by a constant
  factor, which does not change the minimiser).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ConvAutoencoder", "WGANCritic", "WGANGenerator", "check_power_of_two_size"]


def check_power_of_two_size(image_size: int, low: int = 32, high: int = 512) -> int:
    """Return ``log2(image_size)``; raise for sides that are not a power of two in ``[low, high]``.

    Raises:
        ValueError: ``image_size`` is not an integer power of two between ``low`` and ``high``.
    """
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or not low <= image_size <= high
        or image_size & (image_size - 1)
    ):
        raise ValueError(f"image_size must be a power of two between {low} and {high}, got {image_size!r}")
    return int(math.log2(image_size))


def _stage_channels(width: int, stages: int) -> list[int]:
    """Channels at each resolution from the coarsest 4x4 map to the finest stage (DCGAN pattern, capped at 8x)."""
    return [width * min(2 ** (stages - 1 - i), 8) for i in range(stages)]


class WGANGenerator(nn.Module):
    """DCGAN-style generator ``G(z)``: a latent vector -> an image in [-1, 1].

    A 4x4 transposed convolution projects ``z`` to a 4x4 map; each following stage doubles the side with a 4x4
    stride-2 transposed convolution + batch norm + ReLU; the last stage maps to ``channels`` with ``tanh``.

    Args:
        latent_dim: size of the latent vector ``z``.
        image_size: side of the square output (power of two, 32..512).
        channels: image channels.
        width: channels of the finest hidden stage; coarser stages use up to ``8 * width``.

    Raises:
        ValueError: bad image size or non-positive sizes.
    """

    def __init__(self, latent_dim: int = 64, image_size: int = 64, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        levels = check_power_of_two_size(image_size)
        if min(latent_dim, channels, width) < 1:
            raise ValueError(f"sizes must be positive, got latent_dim={latent_dim} channels={channels} width={width}")
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.channels = channels
        hidden = _stage_channels(width, levels - 2)  # resolutions 4, 8, ..., image_size / 2
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, hidden[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(hidden[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in zip(hidden[:-1], hidden[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(hidden[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(B, channels, image_size, image_size)`` in [-1, 1] from latents ``(B, latent_dim)``."""
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents of shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        return self.net(z)

    @torch.no_grad()
    def sample(self, count: int, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
        """Draw ``count`` images in [0, 1] from ``z ~ N(0, I)`` with a seeded generator (eval mode, on CPU).

        Args:
            count: number of images (0 gives an empty tensor).
            seed: seed of the latent draws.
            batch_size: images generated per forward pass.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(count, self.latent_dim, generator=rng)
        chunks = [self(z[i : i + batch_size].to(device)).cpu() for i in range(0, count, batch_size)]
        self.train(was_training)
        if not chunks:
            return torch.zeros(0, self.channels, self.image_size, self.image_size)
        return ((torch.cat(chunks) + 1.0) / 2.0).clamp(0.0, 1.0)


class WGANCritic(nn.Module):
    """DCGAN-style Wasserstein critic ``D(x)``: one unbounded score per image (no sigmoid, no batch norm).

    Each stage halves the side with a 4x4 stride-2 convolution (+ per-sample layer norm except on the first stage)
    + leaky ReLU, down to 4x4; a final 4x4 convolution gives the score.

    Args:
        image_size: side of the square input (power of two, 32..512).
        channels: image channels.
        width: channels of the first stage; doubled per stage up to ``8 * width``.
        norm: ``"layer"`` (GroupNorm with one group: normalises each sample over C, H, W) or ``"none"``.

    Raises:
        ValueError: bad image size, sizes or norm.
    """

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 32, norm: str = "layer") -> None:
        super().__init__()
        levels = check_power_of_two_size(image_size)
        if min(channels, width) < 1:
            raise ValueError(f"sizes must be positive, got channels={channels} width={width}")
        if norm not in ("layer", "none"):
            raise ValueError(f"norm must be 'layer' or 'none', got {norm!r}")
        self.image_size = image_size
        self.channels = channels
        hidden = _stage_channels(width, levels - 2)[::-1]  # resolutions image_size / 2, ..., 4
        layers: list[nn.Module] = []
        c_in = channels
        for stage, c_out in enumerate(hidden):
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1))
            if norm == "layer" and stage > 0:
                layers.append(nn.GroupNorm(1, c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        layers.append(nn.Conv2d(c_in, 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Critic scores ``(B,)`` of images ``(B, channels, image_size, image_size)`` scaled to [-1, 1]."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.channels, self.image_size, self.image_size):
            raise ValueError(
                f"expected images of shape (B, {self.channels}, {self.image_size}, {self.image_size}), "
                f"got {tuple(x.shape)}"
            )
        return self.net(x).flatten()


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder with ReLU encoder and decoder (paper Eqs. 3-8), images in [0, 1].

    Args:
        image_size: side of the square input (power of two, 32..512).
        channels: image channels.
        width: channels of the first encoder stage; doubled per stage up to ``8 * width``.
        latent_channels: channels of the feature space ``y`` (spatial side ``image_size / 2**depth``).
        depth: number of stride-2 stages (1..``log2(image_size) - 2``).

    Raises:
        ValueError: bad image size, sizes or depth.
    """

    def __init__(
        self, image_size: int = 64, channels: int = 3, width: int = 16, latent_channels: int = 8, depth: int = 3
    ) -> None:
        super().__init__()
        levels = check_power_of_two_size(image_size)
        if min(channels, width, latent_channels) < 1:
            raise ValueError(
                f"sizes must be positive, got channels={channels} width={width} latent_channels={latent_channels}"
            )
        if not 1 <= depth <= levels - 2:
            raise ValueError(f"depth must be between 1 and {levels - 2} for image_size {image_size}, got {depth}")
        self.image_size = image_size
        self.channels = channels
        self.latent_channels = latent_channels
        self.latent_side = image_size // 2**depth
        hidden = [width * min(2**i, 8) for i in range(depth)]
        encoder: list[nn.Module] = []
        c_in = channels
        for c_out in hidden:
            encoder += [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.ReLU(inplace=True)]
            c_in = c_out
        encoder += [nn.Conv2d(c_in, latent_channels, 3, 1, 1), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*encoder)
        decoder: list[nn.Module] = [nn.Conv2d(latent_channels, hidden[-1], 3, 1, 1), nn.ReLU(inplace=True)]
        outs = hidden[::-1][1:] + [channels]
        c_in = hidden[-1]
        for c_out in outs:
            decoder += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.ReLU(inplace=True)]
            c_in = c_out
        self.decoder = nn.Sequential(*decoder)
        # start the output layer mid-range (0.5) so that the final ReLU of Eq. 8 begins in its active region: with
        # a near-zero start, a colour channel whose pre-activations turn negative early never recovers (dead ReLU)
        with torch.no_grad():
            self.decoder[-2].bias.fill_(0.5)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """Shape ``(latent_channels, side, side)`` of one image's feature space."""
        return (self.latent_channels, self.latent_side, self.latent_side)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature space ``y = ReLU(w x + b)`` (non-negative), shape ``(B, *latent_shape)``."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.channels, self.image_size, self.image_size):
            raise ValueError(
                f"expected images of shape (B, {self.channels}, {self.image_size}, {self.image_size}), "
                f"got {tuple(x.shape)}"
            )
        return self.encoder(x)

    def decode(self, y: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``z = ReLU(w' y + b')`` from a feature space ``(B, *latent_shape)``."""
        if y.dim() != 4 or tuple(y.shape[1:]) != self.latent_shape:
            raise ValueError(f"expected latents of shape (B, {', '.join(map(str, self.latent_shape))}), "
                             f"got {tuple(y.shape)}")  # fmt: skip
        return self.decoder(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x``."""
        return self.decode(self.encode(x))

    def reconstruction_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared reconstruction error of ``x`` (the paper's ``C_ae``, Eqs. 5-6, per value)."""
        return F.mse_loss(self(x), x)
