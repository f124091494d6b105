"""Fusion autoencoder for three co-registered multiphoton modalities and the fused-latent classifier.

Kethireddy et al., "Differential Diagnosis of Thyroid Tumors Through Information Fusion from Multiphoton Microscopy
Images Using Fusion Autoencoder", ICPR 2024. The autoencoder follows the paper's Table 1: 25 convolutions with 3x3
kernels, every one followed by GELU, valid (unpadded) convolutions in the encoder, 2x2 max-pooling after table layers
2 and 7, one batch normalisation in the encoder and one in the decoder, a 3-channel latent (layer 13), a transposed-
convolution decoder that splits after its sixth layer into three private heads reconstructing BSHG, FSHG and TPEF.
For an N x N input (N divisible by 4, N >= 84) the latent is ``(N - 80) / 4`` pixels and the reconstructions N.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ENCODER_CHANNELS",
    "DECODER_CHANNELS",
    "MODALITIES",
    "ChannelSelector",
    "FusionAutoencoder",
    "FusionClassifier",
    "MINI_EFFICIENTNET_BLOCKS",
    "efficientnet_classifier",
    "fusion_latent_size",
]

#: channel order of the 3-channel input stack
MODALITIES = ("BSHG", "FSHG", "TPEF")
#: Table 1 output channels of encoder layers 1-12 (layer 13 is the 3-channel latent)
ENCODER_CHANNELS = (12, 14, 16, 20, 20, 32, 64, 128, 128, 256, 512, 512)
#: Table 1 output channels of the shared decoder layers 14-19 (split into 3 x 4 for the private heads)
DECODER_CHANNELS = (256, 128, 64, 32, 24, 12)


def fusion_latent_size(size: int) -> int:
    """Side of the fused latent for an input of side ``size`` (Table 1: 512 -> 108).

    Raises:
        ValueError: when ``size`` is not divisible by 4 or too small (< 84) for the valid convolutions.
    """
    if size % 4 or size < 84:
        raise ValueError(f"input side {size} must be divisible by 4 and at least 84 for the fusion autoencoder")
    return (size - 80) // 4


def _scaled(channels: int, width: float, floor: int = 4) -> int:
    return max(floor, int(round(channels * width)))


class FusionAutoencoder(nn.Module):
    """The paper's fusion autoencoder (Table 1): one encoder path, a 3-channel latent, three reconstruction heads.

    Args:
        in_channels: input modalities (3: BSHG, FSHG, TPEF).
        width: multiplier of the inner channel counts (1.0 = Table 1; smaller for CPU-sized samples). Layers 1 and
            19 keep 12 channels (3 heads x 4) and the latent keeps 3.
        latent_on_path: True (the paper's text): the decoder reconstructs from the 3-channel latent (layer 14 is a
            5x5 transposed convolution 108 -> 112 px). False (Table 1 / the authors' code): the latent is a side head
            of layer 12 and layer 14 is a 3x3 transposed convolution of layer 12 (110 -> 112 px); the latent then
            receives no gradient from the reconstruction loss.
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, latent_on_path: bool = True) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self.in_channels = in_channels
        self.latent_on_path = latent_on_path
        enc = [ENCODER_CHANNELS[0]] + [_scaled(c, width) for c in ENCODER_CHANNELS[1:]]
        dec = [_scaled(c, width) for c in DECODER_CHANNELS[:-1]] + [DECODER_CHANNELS[-1]]
        # layer 1: one 3x3 convolution with dilation 5 on the stacked modalities (512 -> 502 px, as Table 1)
        self.enc1 = nn.Conv2d(in_channels, enc[0], 3, dilation=5)
        self.enc = nn.ModuleList([nn.Conv2d(enc[i - 1], enc[i], 3) for i in range(1, len(enc))])  # layers 2-12
        self.enc_norm = nn.BatchNorm2d(enc[5])  # after layer 6 (the encoder's batch normalisation)
        self.latent = nn.Conv2d(enc[-1], 3, 3)  # layer 13
        if latent_on_path:
            self.dec_in = nn.ConvTranspose2d(3, dec[0], 5)
        else:
            self.dec_in = nn.ConvTranspose2d(enc[-1], dec[0], 3)
        self.dec = nn.ModuleList([nn.ConvTranspose2d(dec[i - 1], dec[i], 3) for i in range(1, len(dec))])  # 15-19
        self.dec_norm = nn.BatchNorm2d(dec[2])  # after layer 16 (the decoder's batch normalisation)
        per_head = DECODER_CHANNELS[-1] // 3
        self.heads = nn.ModuleList(
            [
                nn.Sequential(
                    nn.ConvTranspose2d(per_head, 1, 3),  # 20
                    nn.GELU(),
                    nn.ConvTranspose2d(1, 1, 3),  # 21
                    nn.GELU(),
                    nn.ConvTranspose2d(1, 1, 3),  # 22
                    nn.GELU(),
                    nn.ConvTranspose2d(1, 1, 3, stride=2),  # 23: N/4 -> N/2 + 1
                    nn.GELU(),
                    nn.ConvTranspose2d(1, 1, 3, stride=2, padding=2, output_padding=1),  # 24: -> N
                    nn.GELU(),
                    nn.ConvTranspose2d(1, 1, 3, padding=1),  # 25
                    nn.GELU(),
                )
                for _ in range(3)
            ]
        )
        self.per_head = per_head

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Layer 12 features."""
        x = F.gelu(self.enc1(x))
        for i, conv in enumerate(self.enc):  # i = 0 is table layer 2
            x = F.gelu(conv(x))
            if i == 4:
                x = self.enc_norm(x)
            if i == 0 or i == 5:
                x = F.max_pool2d(x, 2)
        return x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The fused 3-channel latent of a ``(B, 3, N, N)`` stack: ``(B, 3, (N - 80) / 4, (N - 80) / 4)``."""
        return F.gelu(self.latent(self._features(x)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(latent, reconstruction)``; the reconstruction stacks the three heads ``(B, 3, N, N)``."""
        features = self._features(x)
        latent = F.gelu(self.latent(features))
        y = F.gelu(self.dec_in(latent if self.latent_on_path else features))
        for i, conv in enumerate(self.dec):
            y = F.gelu(conv(y))
            if i == 1:
                y = self.dec_norm(y)
        outputs = []
        for k, head in enumerate(self.heads):
            outputs.append(head(y[:, k * self.per_head : (k + 1) * self.per_head]))
        return latent, torch.cat(outputs, 1)


class ChannelSelector(nn.Module):
    """Baseline front end: one modality repeated to 3 channels, or the naive 3-channel stack (no fusion).

    Args:
        channels: input channel indices to keep (``[0]`` = BSHG, ``[1]`` = FSHG, ``[2]`` = TPEF, ``[0, 1, 2]`` =
            stacking). A single channel is repeated three times (grey -> RGB, as the paper's single-modality CNNs).
    """

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        if not channels or len(channels) > 3 or any(c < 0 for c in channels):
            raise ValueError(f"channels must be 1 to 3 non-negative indices, got {list(channels)}")
        self.channels = [int(c) for c in channels]
        self.repeat = 3 // len(self.channels) if 3 % len(self.channels) == 0 else 1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's 3-channel input (same name as :meth:`FusionAutoencoder.encode`)."""
        return self.forward(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = x[:, self.channels]
        if x.shape[1] < 3:
            x = x.repeat(1, self.repeat, 1, 1)
        return x


class FusionClassifier(nn.Module):
    """Front end (the fusion autoencoder's encoder, or a baseline channel selector) + image classifier, as one module.

    ``forward`` maps the ``(B, 3, N, N)`` stack (BSHG, FSHG, TPEF) to class logits: front end -> bilinear resize to
    ``classifier_size`` (the paper resizes the latent to 224) -> classifier.

    Args:
        front: :class:`FusionAutoencoder` (its ``encode`` is used) or :class:`ChannelSelector`.
        classifier: a 3-channel image classifier returning ``(B, num_classes)`` logits (EfficientNet-B4 in the paper).
        classifier_size: side of the classifier's input.

    The classifier's input is standardised per channel by a batch normalisation without affine parameters (trained
    with the classifier; the paper rescales the latent through an 8-bit PNG and ImageNet mean / std instead): the
    latent's raw scale is arbitrary and can be far below EfficientNet's batch-norm epsilon.
    """

    def __init__(self, front: nn.Module, classifier: nn.Module, classifier_size: int = 224) -> None:
        super().__init__()
        self.front = front
        self.input_norm = nn.BatchNorm2d(3, affine=False)
        self.classifier = classifier
        self.classifier_size = int(classifier_size)
        self.fusion = isinstance(front, FusionAutoencoder)
        self.front_frozen = False

    def front_features(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's 3-channel input before resizing (the fused latent, or the selected channels)."""
        return self.front.encode(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        z = self.input_norm(self.front_features(x))
        if z.shape[-1] != self.classifier_size or z.shape[-2] != self.classifier_size:
            z = F.interpolate(
                z, size=[self.classifier_size, self.classifier_size], mode="bilinear", align_corners=False
            )
        return self.classifier(z)

    def freeze_front(self) -> None:
        """Stage 2 of the paper's training: the trained autoencoder is frozen (no gradient, BN in eval mode)."""
        for p in self.front.parameters():
            p.requires_grad_(False)
        self.front_frozen = True
        self.front.eval()

    def train(self, mode: bool = True) -> FusionClassifier:  # noqa: D102
        super().train(mode)
        if self.front_frozen:
            self.front.eval()
        return self


#: a reduced EfficientNet for CPU-sized samples: the first four MBConv stages of B0, one block each
MINI_EFFICIENTNET_BLOCKS = (
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r1_k3_s22_e6_i16_o24_se0.25",
    "r1_k5_s22_e6_i24_o40_se0.25",
    "r1_k3_s22_e6_i40_o80_se0.25",
)


def efficientnet_classifier(
    model_name: str = "efficientnet-b4",
    num_classes: int = 2,
    in_channels: int = 3,
    bn_momentum: float = 0.01,
    image_size: int = 224,
) -> nn.Module:
    """The classification module: MONAI's EfficientNet, randomly initialised (no ImageNet weights offline).

    Args:
        model_name: ``efficientnet-b0`` ... ``efficientnet-b7`` (the paper: b4), or ``efficientnet-mini`` (the first
            four MBConv stages of B0, one block each; for CPU-sized samples).
        num_classes: output logits.
        in_channels: input channels (3: the fused latent or the baseline's 3-channel input).
        bn_momentum: batch-norm momentum (EfficientNet's reference value 0.01 suits long schedules; short ones need
            ~0.1 for the running statistics to follow the weights).
        image_size: classifier input side (used by the mini variant's same-padding).
    """
    norm = ("batch", {"eps": 1e-3, "momentum": float(bn_momentum)})
    if model_name == "efficientnet-mini":
        from monai.networks.nets import EfficientNet

        return EfficientNet(list(MINI_EFFICIENTNET_BLOCKS), spatial_dims=2, in_channels=in_channels,
                            num_classes=num_classes, dropout_rate=0.2, image_size=image_size, norm=norm)  # fmt: skip
    from monai.networks.nets import EfficientNetBN

    return EfficientNetBN(model_name, pretrained=False, spatial_dims=2, in_channels=in_channels,
                          num_classes=num_classes, norm=norm)  # fmt: skip
