"""Metrics and metric output transforms used by the bundles' evaluators."""

from .anhir import ANHIR_AGGREGATES, ANHIRMetric, anhir_aggregates, anhir_pair_scores, relative_tre
from .binary_classification import (
    aggregate_runs,
    binary_auroc,
    binary_classification_summary,
    class_precision_recall_f1,
)
from .classification_report import multiclass_summary, roc_optimal_threshold, threshold_metrics
from .fid import (
    fid_between_folders,
    frechet_distance,
    image_features,
    inception_feature_extractor,
    random_feature_extractor,
)
from .lesion_geometry import LESION_GEOMETRY_SCORES, lesion_geometry_baselines, lesion_geometry_scores
from .ood import (
    MultiLevelRule,
    auc_after_rejection,
    bootstrap_ci,
    energy,
    energy_score,
    ensemble_uncertainties,
    fit_threshold,
    fpr_at_threshold,
    fpr_at_tpr,
    max_softmax_probability,
    roc_auc,
)
from .registration import (
    FoldingHandler,
    FoldingMetric,
    LabelDiceHandler,
    LabelDiceMetric,
    folding_percentage,
    jacobian_determinant,
    label_dice,
)
from .segmentation import (
    SpacingAwareHausdorffDistanceMetric,
    foreground_union,
    from_engine_all_foreground,
    from_engine_foreground_union,
)
from .super_resolution import from_engine_upsampled, sr_quality, upsample, write_sr_comparison

__all__ = [
    "fid_between_folders",
    "frechet_distance",
    "image_features",
    "inception_feature_extractor",
    "random_feature_extractor",
    "multiclass_summary",
    "roc_optimal_threshold",
    "threshold_metrics",
    "LESION_GEOMETRY_SCORES",
    "lesion_geometry_baselines",
    "lesion_geometry_scores",
    "aggregate_runs",
    "binary_auroc",
    "binary_classification_summary",
    "class_precision_recall_f1",
    "ANHIR_AGGREGATES",
    "ANHIRMetric",
    "anhir_aggregates",
    "anhir_pair_scores",
    "relative_tre",
    "FoldingHandler",
    "FoldingMetric",
    "LabelDiceHandler",
    "LabelDiceMetric",
    "folding_percentage",
    "jacobian_determinant",
    "label_dice",
    "MultiLevelRule",
    "auc_after_rejection",
    "bootstrap_ci",
    "energy",
    "energy_score",
    "ensemble_uncertainties",
    "fit_threshold",
    "fpr_at_threshold",
    "fpr_at_tpr",
    "max_softmax_probability",
    "roc_auc",
    "from_engine_upsampled",
    "sr_quality",
    "upsample",
    "write_sr_comparison",
    "SpacingAwareHausdorffDistanceMetric",
    "foreground_union",
    "from_engine_all_foreground",
    "from_engine_foreground_union",
]
