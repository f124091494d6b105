"""Losses of the colorization GAN (class-aware attention lesion detection, Eqs. 3-6).

Generator: ``L_G = L_C + 1/2 L_A`` with the content loss ``L_C = |y - G(x)| + sum_i mean|phi_i(y) - phi_i(G(x))|``
(Eq. 4: L1 of the image plus the L1 of intermediate feature maps, each averaged over its ``w_i x h_i`` cells) and the
adversarial loss ``L_A = -log D(G(x))`` (Eq. 5). Discriminator: ``L_D = -log D(y) - log(1 - D(G(x)))`` (Eq. 6).
``D`` is a probability: the discriminator returns logits and the logs are computed stably with
``binary_cross_entropy_with_logits``.

``phi_i``: the paper follows a perceptual loss on a pretrained network; nothing can be downloaded here, so the
maps are the discriminator's intermediate features (feature matching, pix2pixHD's choice), taken with gradients
flowing into the generator only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ColorizationDiscriminatorLoss", "ColorizationGeneratorLoss"]


class ColorizationGeneratorLoss(nn.Module):
    """``L_G = L_C + adversarial_weight * L_A`` (Eqs. 3-5); returns the total and its parts.

    Args:
        adversarial_weight: weight of ``L_A`` (the paper: 1/2).
        feature_weight: weight of the feature-map term of ``L_C`` (the paper: 1).
    """

    def __init__(self, adversarial_weight: float = 0.5, feature_weight: float = 1.0) -> None:
        super().__init__()
        self.adversarial_weight = float(adversarial_weight)
        self.feature_weight = float(feature_weight)

    def forward(
        self,
        fake: Tensor,
        real: Tensor,
        fake_logits: Tensor,
        fake_features: Sequence[Tensor] = (),
        real_features: Sequence[Tensor] = (),
    ) -> dict[str, Tensor]:
        """The generator loss of one batch.

        Args:
            fake: ``G(x)``.
            real: ``y``.
            fake_logits: ``D``'s logits of ``G(x)``.
            fake_features: ``phi_i(G(x))``.
            real_features: ``phi_i(y)`` (detached here).

        Returns:
            ``{"loss", "l1", "feature", "adversarial"}``.

        Raises:
            ValueError: different numbers of feature maps.
        """
        if len(fake_features) != len(real_features):
            raise ValueError(f"{len(fake_features)} fake feature maps for {len(real_features)} real ones")
        l1 = F.l1_loss(fake, real)
        feature = sum((F.l1_loss(f, r.detach()) for f, r in zip(fake_features, real_features)), fake.new_zeros(()))
        adversarial = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))  # -log D(G(x))
        content = l1 + self.feature_weight * feature
        return {
            "loss": content + self.adversarial_weight * adversarial,
            "l1": l1,
            "feature": feature,
            "adversarial": adversarial,
        }


class ColorizationDiscriminatorLoss(nn.Module):
    """``L_D = -log D(y) - log(1 - D(G(x)))`` (Eq. 6), batch mean, from logits."""

    def forward(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The discriminator loss of one batch (``fake_logits`` of a detached ``G(x)``)."""
        real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real + fake
