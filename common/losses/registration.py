"""Unsupervised (and weakly supervised) deformable-registration losses for 2D and 3D dense displacement fields.

Displacements follow MONAI's DDF convention throughout: shape ``(batch, spatial_dims, *spatial)``, channel ``i``
is the displacement along spatial axis ``i`` in voxels, and the moving image is resampled at ``x + ddf(x)``
(``monai.networks.blocks.Warp``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from monai.networks.blocks import Warp
from torch import nn

__all__ = ["diffusion_regularizer", "soft_dice_loss", "RegistrationLoss"]


def diffusion_regularizer(ddf: torch.Tensor) -> torch.Tensor:
    """Diffusion regulariser ``mean ||grad u||^2`` by forward finite differences, averaged over the axes.

    For each spatial axis, the squared forward difference of every displacement channel is averaged over voxels;
    the axis means are then averaged (the authors' ``(mean dx^2 + mean dy^2) / 2``). With a voxel-unit DDF the value
    does not change when image and displacement are resampled together.

    Args:
        ddf: ``(batch, spatial_dims, *spatial)`` displacement field.
    """
    spatial_dims = ddf.dim() - 2
    terms = [torch.diff(ddf, dim=2 + axis).square().mean() for axis in range(spatial_dims)]
    return torch.stack(terms).mean()


def soft_dice_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:  # noqa: D417
    """``1 - mean_k 2|p_k t_k| / (|p_k|^2 + |t_k|^2)`` over one-hot channels (background included, squared
    denominators, as the Dice loss of the authors' 3D code).

    Args:
        pred: ``(batch, classes, *spatial)`` warped one-hot moving labels (linear interpolation keeps them soft).
        target: one-hot fixed labels of the same shape.
    """  # noqa: D205
    dims = tuple(range(2, pred.dim()))
    intersection = (pred * target).sum(dims)
    denominator = pred.square().sum(dims) + target.square().sum(dims)
    return 1.0 - ((2 * intersection + eps) / (denominator + eps)).mean()


class RegistrationLoss(nn.Module):
    """``MSE(fixed, moving o phi) + lambda * diffusion(phi) [+ gamma * Dice loss(fixed labels, moving labels o phi)]``.

    The FNOReg objective (paper §2.4): lambda = 0.01 in 2D, lambda = gamma = 0.01 in 3D, where the Dice term uses
    the label maps warped with linear interpolation of their one-hot encoding.

    Called by MONAI's trainers as ``loss(ddf, targets)`` with ``targets`` a mapping holding ``moving`` and ``fixed``
    images and, when ``dice_weight > 0``, the ``moving_label`` and ``fixed_label`` maps (integer labels,
    ``(batch, 1, *spatial)``).

    Args:
        smooth_weight: lambda.
        dice_weight: gamma (0 disables the label term, as in 2D).
        num_classes: number of label values for the one-hot encoding (labels ``0 .. num_classes - 1``).
        padding_mode: ``Warp`` padding for the images.

    Raises:
        ValueError: when ``dice_weight > 0`` and ``num_classes`` is not given.
    """

    def __init__(
        self,
        smooth_weight: float = 0.01,
        dice_weight: float = 0.0,
        num_classes: int | None = None,
        padding_mode: str = "border",
    ) -> None:
        super().__init__()
        if dice_weight > 0 and not num_classes:
            raise ValueError("dice_weight > 0 needs num_classes (number of label values, background included)")
        self.smooth_weight = float(smooth_weight)
        self.dice_weight = float(dice_weight)
        self.num_classes = num_classes
        self.warp = Warp(mode="bilinear", padding_mode=padding_mode)
        self.warp_labels = Warp(mode="bilinear", padding_mode="zeros")
        self.last_terms: dict[str, float] = {}

    def forward(self, ddf: torch.Tensor, targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Return the scalar loss; the separate terms are kept in ``last_terms`` for logging.

        Raises:
            KeyError: naming the missing target.
        """
        for key in ("moving", "fixed") + (("moving_label", "fixed_label") if self.dice_weight > 0 else ()):
            if key not in targets:
                raise KeyError(f"registration loss needs '{key}' in the targets, got {sorted(targets)}")
        moving, fixed = targets["moving"].float(), targets["fixed"].float()
        warped = self.warp(moving, ddf)
        similarity = F.mse_loss(warped, fixed)
        smooth = diffusion_regularizer(ddf)
        loss = similarity + self.smooth_weight * smooth
        self.last_terms = {"mse": float(similarity.detach()), "smooth": float(smooth.detach())}
        if self.dice_weight > 0:
            moving_onehot = _one_hot(targets["moving_label"], int(self.num_classes))
            fixed_onehot = _one_hot(targets["fixed_label"], int(self.num_classes))
            dice = soft_dice_loss(self.warp_labels(moving_onehot, ddf), fixed_onehot)
            loss = loss + self.dice_weight * dice
            self.last_terms["dice"] = float(dice.detach())
        return loss


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(batch, 1, *spatial)`` integer labels -> ``(batch, num_classes, *spatial)`` float one-hot."""
    index = labels.long().squeeze(1).clamp(0, num_classes - 1)
    return torch.movedim(F.one_hot(index, num_classes), -1, 1).float()
