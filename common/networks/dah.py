"""DAH: ESORDA's Domain Adaptation Head, a gradient reversal layer and two domain discriminators.

The paper's Fig. 6: a global-alignment discriminator ``D_GA`` sees the features of source and target images, a
centre-aware alignment discriminator ``D_CA`` sees them where the detection head finds foreground, both behind a
gradient reversal layer (GRL), so that the discriminators learn to tell the domains apart while the feature extractor
learns to make them alike. The paper gives no more; the design follows the pixel-wise adversarial alignment of
FCOS it cites in spirit (Hsu et al., "Every Pixel Matters", ECCV 2020):

- both discriminators are small fully convolutional nets giving a domain logit per location of every neck level
  (shared by the levels), trained with BCE (source 0, target 1);
- ``D_CA`` sees the features multiplied by the centre-aware map ``sigmoid(cls) * sigmoid(ctr)`` of the head's own
  outputs (detached: the map selects where to align, it is not itself aligned), normalised by its mean so the
  loss scale does not follow the number of foreground points;
- the GRL multiplies the gradient by ``-lambda`` (``grl_weight``) on the way back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DomainAdaptationHead", "DomainDiscriminator", "GradientReversal", "grad_reverse"]


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: float) -> Tensor:  # noqa: D102
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        return -ctx.weight * grad, None


def grad_reverse(x: Tensor, weight: float = 1.0) -> Tensor:
    """Identity forward, gradient multiplied by ``-weight`` backward (Ganin & Lempitsky's GRL)."""
    return _ReverseGrad.apply(x, float(weight))


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`.

    Args:
        weight: the reversal weight ``lambda``.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` unchanged; its gradient reversed and scaled."""
        return grad_reverse(x, self.weight)


class DomainDiscriminator(nn.Module):
    """Fully convolutional domain classifier: ``num_convs`` 3x3 conv + GroupNorm + ReLU, then a 1-channel logit.

    Args:
        channels: input channels.
        num_convs: hidden layers.
    """

    def __init__(self, channels: int, num_convs: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(num_convs):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.GroupNorm(8, channels), nn.ReLU()]
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 1, H, W)`` domain logits."""
        return self.net(x)


class DomainAdaptationHead(nn.Module):
    """``D_GA`` and ``D_CA`` behind a GRL; :meth:`forward` returns their losses for one domain.

    Args:
        channels: neck width.
        num_convs: hidden layers of each discriminator.
        grl_weight: GRL ``lambda``.
        global_weight: weight of the ``D_GA`` loss.
        centre_weight: weight of the ``D_CA`` loss.
    """

    def __init__(
        self, channels: int, num_convs: int = 2, grl_weight: float = 0.1, global_weight: float = 1.0,
        centre_weight: float = 1.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.global_discriminator = DomainDiscriminator(channels, num_convs)
        self.centre_discriminator = DomainDiscriminator(channels, num_convs)
        self.grl = GradientReversal(grl_weight)
        self.global_weight, self.centre_weight = float(global_weight), float(centre_weight)

    @staticmethod
    def centre_aware_map(cls_map: Tensor, box_map: Tensor) -> Tensor:
        """``(B, 1, H, W)`` map ``max_k sigmoid(cls_k) * sigmoid(ctr)``, detached and divided by its mean."""
        m = torch.sigmoid(cls_map).amax(dim=1, keepdim=True) * torch.sigmoid(box_map[:, 4:5])
        m = m.detach()
        return m / m.mean(dim=(1, 2, 3), keepdim=True).clamp(min=1e-6)

    def forward(
        self,
        features: Sequence[Tensor],
        cls_maps: Sequence[Tensor],
        box_maps: Sequence[Tensor],
        domain: float | Tensor,
    ) -> dict[str, Tensor]:
        """``{"global_alignment", "centre_alignment"}`` BCE losses (weighted, averaged over levels) for one domain.

        Args:
            features: the neck's maps per level.
            cls_maps: the head's classification logits per level.
            box_maps: the head's ``[l, t, r, b, ctr]`` maps per level.
            domain: 0.0 for source images, 1.0 for target images, or a ``(B,)`` tensor of both (one call for a
                batch of source and target images, as a distributed wrapper needs one forward per step).
        """
        ga, ca = [], []

        def full(like: Tensor) -> Tensor:
            if isinstance(domain, Tensor):
                return domain.to(like).view(-1, 1, 1, 1).expand_as(like)
            return torch.full_like(like, float(domain))

        for f, c, b in zip(features, cls_maps, box_maps):
            reversed_f = self.grl(f)
            g = self.global_discriminator(reversed_f)
            ga.append(F.binary_cross_entropy_with_logits(g, full(g)))
            centred = self.centre_discriminator(reversed_f * self.centre_aware_map(c, b))
            ca.append(F.binary_cross_entropy_with_logits(centred, full(centred)))
        return {
            "global_alignment": self.global_weight * torch.stack(ga).mean(),
            "centre_alignment": self.centre_weight * torch.stack(ca).mean(),
        }
