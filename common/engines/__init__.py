"""Engine pieces that MONAI's stock trainers, evaluators and handlers cannot express."""

from .metrics_report import MetricsReport, write_json_atomic
from .prepare_batch import PrepareBatchTargetDict

__all__ = ["MetricsReport", "PrepareBatchTargetDict", "write_json_atomic"]
