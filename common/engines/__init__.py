"""Engine pieces that MONAI's stock trainers, evaluators and handlers cannot express."""

from .affine_matching import (
    IntensityFeatures,
    MatcherInferer,
    PreAlignedRegistrationBatch,
    RotationSearchInferer,
    SyntheticHomographyBatch,
    global_ncc,
    perceptual_search,
    random_homography,
    ransac_affine,
)
from .metrics_report import MetricsReport, write_json_atomic
from .mpm_fusion import ClassProbabilityWriter, MPMClassificationReport, train_fusion_autoencoder
from .ood_evaluation import (
    ENSEMBLE_SPACE,
    OOD_METHODS,
    ExitsInferer,
    OODEvaluationReport,
    OODInferenceWriter,
    fit_ood_thresholds,
    load_ensemble,
    ood_flags,
    sample_member_hyperparameters,
    score_datalist,
    train_ensemble,
    write_ood_thresholds,
)
from .prepare_batch import PrepareBatchTargetDict
from .registration import PairTimer, PrepareRegistrationBatch
from .rvtt import RVTTTrainer, SRComparisonWriter, roi_patch_corners

__all__ = [
    "ClassProbabilityWriter",
    "MPMClassificationReport",
    "train_fusion_autoencoder",
    "IntensityFeatures",
    "MatcherInferer",
    "PreAlignedRegistrationBatch",
    "RotationSearchInferer",
    "SyntheticHomographyBatch",
    "global_ncc",
    "perceptual_search",
    "random_homography",
    "ransac_affine",
    "PairTimer",
    "PrepareRegistrationBatch",
    "ENSEMBLE_SPACE",
    "OOD_METHODS",
    "ExitsInferer",
    "OODEvaluationReport",
    "OODInferenceWriter",
    "fit_ood_thresholds",
    "load_ensemble",
    "ood_flags",
    "sample_member_hyperparameters",
    "score_datalist",
    "train_ensemble",
    "write_ood_thresholds",
    "RVTTTrainer",
    "SRComparisonWriter",
    "roi_patch_corners",
    "MetricsReport",
    "PrepareBatchTargetDict",
    "write_json_atomic",
]
