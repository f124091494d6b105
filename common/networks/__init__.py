"""Networks and blocks the papers add to MONAI's."""

from .discriminators import VGGStyleDiscriminator
from .early_exit_cnn import PAPER_CHANNELS, EarlyExitCNN, MultiExitLoss
from .enet import ENet
from .feature_matching import (
    AffineMatchingNet,
    AttentionLayer,
    CoarseBackbone,
    CoarseMatcher,
    coarse_cell_centres,
    mutual_nearest_mask,
    sine_positional_encoding,
    soft_points,
    weighted_affine_dlt,
)
from .fno import (
    DisplacementFieldNet,
    FNOReg,
    FourierLayer,
    FourierUnit,
    SpectralConv,
    SpectralTransform,
    SpectralTransformBlock,
    fno_baseline,
    tucker_ranks,
)
from .iste import (
    ISTE,
    ISTE_VARIANTS,
    LocalFeatureInteractor,
    SelfTextureFusion,
    SwinIREncoder,
    TextureLearner,
    make_coord,
    validate_scale,
)
from .rrdb import ResidualDenseBlock, ResidualInResidualDenseBlock, RRDBGenerator, upsampling_stages
from .sfrseg import SFRSegNet
from .wavelet import IEWADWTDown, haar_dwt2d

__all__ = [
    "AffineMatchingNet",
    "AttentionLayer",
    "CoarseBackbone",
    "CoarseMatcher",
    "coarse_cell_centres",
    "mutual_nearest_mask",
    "sine_positional_encoding",
    "soft_points",
    "weighted_affine_dlt",
    "DisplacementFieldNet",
    "FNOReg",
    "FourierLayer",
    "FourierUnit",
    "SpectralConv",
    "SpectralTransform",
    "SpectralTransformBlock",
    "fno_baseline",
    "tucker_ranks",
    "PAPER_CHANNELS",
    "EarlyExitCNN",
    "MultiExitLoss",
    "RRDBGenerator",
    "ResidualDenseBlock",
    "ResidualInResidualDenseBlock",
    "VGGStyleDiscriminator",
    "upsampling_stages",
    "ISTE",
    "ISTE_VARIANTS",
    "LocalFeatureInteractor",
    "SelfTextureFusion",
    "SwinIREncoder",
    "TextureLearner",
    "make_coord",
    "validate_scale",
    "ENet",
    "IEWADWTDown",
    "SFRSegNet",
    "haar_dwt2d",
]
