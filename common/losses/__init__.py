"""Losses the papers add to MONAI's."""

from .affine_matching import AffineNCCLoss, CoarseMatchingLoss, local_ncc
from .colorization import ColorizationDiscriminatorLoss, ColorizationGeneratorLoss
from .fusion_reconstruction import FusionReconstructionLoss, OneHotBCEWithLogitsLoss
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
    "FusionReconstructionLoss",
    "OneHotBCEWithLogitsLoss",
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
    "ColorizationDiscriminatorLoss",
    "ColorizationGeneratorLoss",
]
