"""Losses the papers add to MONAI's."""

from .affine_matching import AffineNCCLoss, CoarseMatchingLoss, local_ncc
from .point_supervision import BoundaryLoss, PartialCrossEntropyLoss, PointBoundaryLoss
from .registration import RegistrationLoss, diffusion_regularizer, soft_dice_loss
from .super_resolution import (
    EdgeWeightedL1Loss,
    PerceptualLoss,
    ReconstructionLoss,
    RelativisticPairLoss,
    VGGFeatureExtractor,
)

__all__ = [
    "AffineNCCLoss",
    "CoarseMatchingLoss",
    "local_ncc",
    "RegistrationLoss",
    "diffusion_regularizer",
    "soft_dice_loss",
    "EdgeWeightedL1Loss",
    "PerceptualLoss",
    "ReconstructionLoss",
    "RelativisticPairLoss",
    "VGGFeatureExtractor",
    "BoundaryLoss",
    "PartialCrossEntropyLoss",
    "PointBoundaryLoss",
]
