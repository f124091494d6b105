"""Metrics and metric output transforms used by the bundles' evaluators."""

from .anhir import ANHIR_AGGREGATES, ANHIRMetric, anhir_aggregates, anhir_pair_scores, relative_tre
from .binary_classification import aggregate_runs, binary_auroc, binary_classification_summary
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
    "aggregate_runs",
    "binary_auroc",
    "binary_classification_summary",
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
