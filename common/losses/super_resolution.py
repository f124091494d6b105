"""Losses of the rVTT super-resolution method (Tom et al.): reconstruction, perceptual and relativistic pair losses.

- Stage 1, Eq. (1): ``J_recon = eta * |I_SR - I_HR| + L_perception`` with a VGG feature loss (Johnson et al.).
  :class:`EdgeWeightedL1Loss` is the SRNet-w variant (edge-weighted L1, after Rivenson et al.'s edge-weighted
  loss).
- Stages 2 and 3, Eqs. (2) and (3): the relativistic pair loss of a visual Turing test ``T(a, b) = sigmoid(C(a) -
  C(b))`` on matching (real, SR) pairs; Stage 4 uses the same loss with the roles swapped for the generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EdgeWeightedL1Loss", "PerceptualLoss", "ReconstructionLoss", "RelativisticPairLoss", "VGGFeatureExtractor"]

# torchvision's VGG19 "features" indices of conv5_4 before its ReLU (ESRGAN's perceptual layer)
_VGG19_CONV54 = 35


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG-style feature extractor for the perceptual loss.

    With ``checkpoint`` (a local torchvision VGG19 state dict, e.g. ImageNet weights downloaded elsewhere), the
    features are VGG19's conv5_4 before activation, as ESRGAN; inputs are normalised with ImageNet statistics.
    Without it (no internet, no ImageNet weights), a fixed randomly initialised VGG-style stack is used: ``depth``
    3x3 conv + leaky ReLU layers with a 2x2 max pool every two layers, drawn from ``seed``. Random convolutional
    features still measure local texture statistics (Ustyuzhaninov et al., 2017) and are deterministic, so the loss
    is reproducible; they are not a substitute for learned semantics.

    Args:
        checkpoint: path to a torchvision VGG19 state dict, or ``None``/empty for the random substitute.
        channels: widths of the random stack's stages (each stage is two convolutions).
        seed: seed of the random stack.

    Raises:
        FileNotFoundError: ``checkpoint`` does not exist.
    """

    def __init__(self, checkpoint: str | None = None, channels: Sequence[int] = (32, 64), seed: int = 0) -> None:
        super().__init__()
        self.pretrained = bool(checkpoint)
        if self.pretrained:
            from torchvision.models import vgg19

            path = Path(str(checkpoint))
            if not path.is_file():
                raise FileNotFoundError(f"{path}: VGG19 checkpoint for the perceptual loss does not exist")
            vgg = vgg19(weights=None)
            vgg.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            self.net = vgg.features[:_VGG19_CONV54]
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        else:
            generator = torch.Generator().manual_seed(int(seed))
            layers: list[nn.Module] = []
            channels_in = 3
            for i, width in enumerate(channels):
                if i > 0:
                    layers.append(nn.MaxPool2d(2))
                for _ in range(2):
                    conv = nn.Conv2d(channels_in, width, 3, padding=1)
                    with torch.no_grad():  # He-normal weights from the seeded generator
                        conv.weight.normal_(0.0, (2.0 / (9 * channels_in)) ** 0.5, generator=generator)
                        conv.bias.zero_()
                    layers += [conv, nn.LeakyReLU(0.2)]
                    channels_in = width
            self.net = nn.Sequential(*layers[:-1])  # features before the last activation, as ESRGAN
            self.register_buffer("mean", torch.full((1, 3, 1, 1), 0.5))
            self.register_buffer("std", torch.full((1, 3, 1, 1), 0.25))
        for param in self.parameters():
            param.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        """The extractor stays in evaluation mode (frozen)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.net((x - self.mean) / self.std)


class PerceptualLoss(nn.Module):
    """L1 distance between feature maps of a frozen extractor (Johnson et al.'s feature reconstruction loss).

    Args:
        extractor: feature network (default: :class:`VGGFeatureExtractor` without checkpoint).
    """

    def __init__(self, extractor: nn.Module | None = None) -> None:
        super().__init__()
        self.extractor = extractor if extractor is not None else VGGFeatureExtractor()

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:  # noqa: D102
        with torch.no_grad():
            target = self.extractor(hr)
        return F.l1_loss(self.extractor(sr), target)


class EdgeWeightedL1Loss(nn.Module):
    """L1 loss weighted by ``1 + alpha * edge(I_HR)``, edge = Sobel gradient magnitude normalised per image to [0, 1].

    This is the SRNet-w variant of the paper (edge weighting in ``J_recon``).

    Args:
        alpha: extra weight of the strongest edges.
    """

    def __init__(self, alpha: float = 2.0) -> None:
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        self.register_buffer("kernel", torch.stack([sobel, sobel.t()])[:, None])

    def edge_weight(self, hr: torch.Tensor) -> torch.Tensor:
        """Per-pixel weights ``(B, 1, H, W)``."""
        grey = hr.mean(dim=1, keepdim=True)
        grad = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), self.kernel.to(hr))
        magnitude = grad.pow(2).sum(dim=1, keepdim=True).sqrt()
        peak = magnitude.flatten(1).amax(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)
        return 1.0 + self.alpha * magnitude / peak

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:  # noqa: D102
        weight = self.edge_weight(hr.detach())
        return (weight * (sr - hr).abs()).sum() / (weight.sum() * sr.shape[1])


class ReconstructionLoss(nn.Module):
    """The paper's Eq. (1): ``eta * L1(SR, HR) + perceptual_weight * L_perception(SR, HR)``.

    Args:
        eta: weight of the pixel loss.
        perceptual_weight: weight of the perceptual loss (0 disables it and skips the extractor).
        extractor: feature network of the perceptual loss (default :class:`VGGFeatureExtractor`).
        edge_alpha: ``None`` for plain L1 (SRNet); a number for the edge-weighted L1 of SRNet-w.
    """

    def __init__(
        self,
        eta: float = 1.0,
        perceptual_weight: float = 1.0,
        extractor: nn.Module | None = None,
        edge_alpha: float | None = None,
    ) -> None:
        super().__init__()
        self.eta = float(eta)
        self.perceptual_weight = float(perceptual_weight)
        self.pixel = EdgeWeightedL1Loss(edge_alpha) if edge_alpha is not None else nn.L1Loss()
        self.perceptual = PerceptualLoss(extractor) if self.perceptual_weight > 0 else None

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:  # noqa: D102
        loss = self.eta * self.pixel(sr, hr)
        if self.perceptual is not None:
            loss = loss + self.perceptual_weight * self.perceptual(sr, hr)
        return loss


class RelativisticPairLoss(nn.Module):
    """Relativistic visual Turing test loss on matching pairs (the paper's Eqs. 2-3, after Jolicoeur-Martineau).

    With critic scores ``c_real = C(I_HR)``, ``c_fake = C(I_SR)`` of matching pairs, ``T(a, b) = sigmoid(C(a) -
    C(b))`` and

    - ``forward(c_real, c_fake)`` = ``-E[log T(HR, SR)] - E[log(1 - T(SR, HR))]``: the critic's loss (Stages 2, 3);
    - ``forward(c_fake, c_real)``: the same with roles swapped, the generator's adversarial loss (Stage 4).

    Args:
        average: compare each score with the batch mean of the other set (RaGAN, as ESRGAN) instead of its matching
            pair (the paper's pairs).
    """

    def __init__(self, average: bool = False) -> None:
        super().__init__()
        self.average = bool(average)

    def forward(self, c_real: torch.Tensor, c_fake: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if c_real.shape != c_fake.shape:
            raise ValueError(f"score shapes differ: {tuple(c_real.shape)} vs {tuple(c_fake.shape)}")
        other_fake = c_fake.mean() if self.average else c_fake
        other_real = c_real.mean() if self.average else c_real
        real_vs_fake = c_real - other_fake
        fake_vs_real = c_fake - other_real
        return F.binary_cross_entropy_with_logits(real_vs_fake, torch.ones_like(real_vs_fake)) + (
            F.binary_cross_entropy_with_logits(fake_vs_real, torch.zeros_like(fake_vs_real))
        )
