"""Evaluation and inference handlers of the OOD classification bundle.

- :class:`OODEvaluationReport`: evaluator handler writing ``eval/metrics.json`` (classification, OOD AUROC / FPR
  and the baselines).
- :class:`OODInferenceWriter`: evaluator handler writing one JSON per image (probabilities, scores, ID flag).

Split from :mod:`common.engines.ood_evaluation`, which keeps the ensemble training and the thresholds.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils import min_version, optional_import

from ..metrics.ood import MultiLevelRule, auc_after_rejection, bootstrap_ci, fpr_at_threshold, fpr_at_tpr, roc_auc
from .classification_outputs import PerCaseWriter, batch_images, source_names
from .metrics_report import json_number, write_json_atomic
from .ood_evaluation import OOD_METHODS, fit_ood_thresholds, load_ensemble, method_id_scores, ood_flags, score_datalist

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["OODEvaluationReport", "OODInferenceWriter"]

logger = logging.getLogger(__name__)


def _macro_auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean over classes of one-vs-rest AUC (classes absent from ``labels`` are skipped)."""
    values = [
        roc_auc(probs[labels == c, c], probs[labels != c, c])
        for c in range(probs.shape[1])
        if (labels == c).any() and (labels != c).any()
    ]
    return float(np.mean(values)) if values else float("nan")


class OODEvaluationReport:
    """Evaluator handler: at the end of the ID test pass, score every set and write the full report.

    Writes ``<output_dir>/metrics.json`` with ``metrics`` (flat scalars: the evaluator's metrics, ``trivial_*``
    baselines, classification figures, and ``<method>/<ood set>/auroc``, ``.../auroc_ci_low``/``high``,
    ``.../fpr95`` and ``.../fpr80`` at the calibration thresholds, ``.../fpr95_test`` at 95 % TPR on the ID test
    set), ``ood`` (the same as a nested table), ``rejection`` (cancer-vs-rest AUC after leaving out images flagged
    at each keep fraction, with bootstrap CI), ``cases`` (per test image) and ``num_cases``.

    Args:
        network: the trained multi-exit network (weights loaded by the evaluator's CheckpointLoader first).
        test_datalist: ID test items (``image``, ``label``).
        calibration_datalist: images whose scores fix the thresholds (the paper: POCUS training images).
        ood_datalists: OOD set name -> items.
        transform: deterministic preprocessing of one item (the evaluator's ``preprocessing``).
        output_dir: folder of ``metrics.json``.
        class_names: class names in label order.
        ensemble_dir, member_factory: the deep ensemble (skipped when the folder does not exist).
        device: inference device.
        temperature: energy temperature (the paper: 0.001).
        keeps: calibration fractions kept as ID (the paper: 0.95 and 0.80).
        num_bootstrap: bootstrap resamples (the paper: 1000).
        bootstrap_resample: ``"id"`` (the paper) or ``"both"``.
        positive_class: class of the binary cancer-vs-rest AUC (malignant).
        seed: bootstrap seed.
        extra: constant entries copied into the report.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        test_datalist: Sequence[Mapping[str, Any]],
        calibration_datalist: Sequence[Mapping[str, Any]],
        ood_datalists: Mapping[str, Sequence[Mapping[str, Any]]],
        transform: Callable,
        output_dir: str | Path,
        class_names: Sequence[str] = ("normal", "benign", "malignant"),
        ensemble_dir: str | Path | None = None,
        member_factory: Callable[[], torch.nn.Module] | None = None,
        device: str | torch.device = "cpu",
        temperature: float = 0.001,
        keeps: Sequence[float] = (0.95, 0.80),
        num_bootstrap: int = 1000,
        bootstrap_resample: str = "id",
        positive_class: int = 2,
        seed: int = 0,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.network = network
        self.test_datalist = test_datalist
        self.calibration_datalist = calibration_datalist
        self.ood_datalists = ood_datalists
        self.transform = transform
        self.path = Path(output_dir) / "metrics.json"
        self.class_names = list(class_names)
        self.ensemble_dir = ensemble_dir
        self.member_factory = member_factory
        self.device = device
        self.temperature = temperature
        self.keeps = list(keeps)
        self.num_bootstrap = num_bootstrap
        self.bootstrap_resample = bootstrap_resample
        self.positive_class = positive_class
        self.seed = seed
        self.extra = dict(extra or {})

    def attach(self, engine: Any) -> None:
        """Write the report when ``engine``'s epoch completes."""
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def compute(self) -> dict[str, Any]:
        """Score every set and build the report (without writing it)."""
        members = (
            load_ensemble(self.ensemble_dir, self.member_factory, self.device)
            if self.ensemble_dir and self.member_factory
            else []
        )

        def run(datalist):
            return score_datalist(self.network, members, datalist, self.transform, self.device, self.temperature)

        calibration, test = run(self.calibration_datalist), run(self.test_datalist)
        ood = {name: run(items) for name, items in self.ood_datalists.items()}
        thresholds = fit_ood_thresholds(calibration, self.keeps)
        rule = MultiLevelRule(calibration["energy"])
        test_ids = method_id_scores(test, rule)
        labels = np.asarray([int(i["label"]) for i in self.test_datalist])
        metrics: dict[str, Any] = {}
        k = len(self.class_names)
        for prefix, probs in [("", test["probabilities"]), ("ensemble_", test.get("ensemble_probabilities"))]:
            if probs is None:
                continue
            metrics[f"{prefix}accuracy"] = float((probs.argmax(1) == labels).mean())
            metrics[f"{prefix}macro_auc"] = _macro_auc(labels, probs)
            metrics[f"{prefix}cancer_auc"] = auc_after_rejection(
                labels == self.positive_class, probs[:, self.positive_class]
            )
        # trivial baselines scored by the same functions: a constant prediction (AUC 0.5) and the majority class
        constant = np.full((len(labels), k), 1.0 / k)
        metrics["trivial_macro_auc"] = _macro_auc(labels, constant)
        metrics["trivial_accuracy"] = float(np.bincount(labels, minlength=k).max() / len(labels))
        metrics["trivial_cancer_auc"] = auc_after_rejection(labels == self.positive_class, constant[:, 0])
        table: dict[str, dict[str, dict[str, float | None]]] = {}
        for method, id_score in test_ids.items():
            table[method] = {}
            for name, scores in ood.items():
                ood_score = method_id_scores(scores, rule)[method]
                low, high = bootstrap_ci(roc_auc, id_score, ood_score, self.num_bootstrap, self.seed,
                                         self.bootstrap_resample)  # fmt: skip
                row = {"auroc": roc_auc(id_score, ood_score), "auroc_ci_low": low, "auroc_ci_high": high}
                for keep in self.keeps:
                    tag = f"fpr{int(round(keep * 100))}"
                    row[tag] = fpr_at_threshold(ood_score, thresholds["methods"][method][str(keep)])
                    row[f"{tag}_test"] = fpr_at_tpr(id_score, ood_score, keep)
                    row[f"id_test_kept{int(round(keep * 100))}"] = fpr_at_threshold(
                        id_score, thresholds["methods"][method][str(keep)]
                    )
                table[method][name] = {key: json_number(v) for key, v in row.items()}
                for key, value in row.items():
                    metrics[f"{method}/{name}/{key}"] = value
        rejection = self._rejection(test, test_ids, thresholds, labels)
        cases = {}
        flags = {keep: ood_flags(test, thresholds, keep) for keep in self.keeps}
        for i, item in enumerate(self.test_datalist):
            case = str(item.get("case", Path(str(item["image"])).name))
            cases[case] = {
                "label": self.class_names[labels[i]],
                "predicted": self.class_names[int(test["probabilities"][i].argmax())],
                "correct": float(test["probabilities"][i].argmax() == labels[i]),
                "probabilities": {c: json_number(p) for c, p in zip(self.class_names, test["probabilities"][i])},
                "scores": {m: json_number(s[i]) for m, s in test_ids.items()},
                "in_distribution": {f"{m}@{keep}": bool(f[m][i]) for keep, f in flags.items() for m in f},
            }
        report = {
            "metrics": {key: json_number(v) for key, v in metrics.items()},
            "ood": table,
            "rejection": rejection,
            "thresholds": {m: v for m, v in thresholds["methods"].items()},
            "multilevel_exit_thresholds": thresholds["multilevel_exit_thresholds"],
            "num_ensemble_members": len(members),
            "num_calibration_images": len(self.calibration_datalist),
            "ood_sets": {name: len(items) for name, items in self.ood_datalists.items()},
            "cases": cases,
            "num_cases": len(self.test_datalist),
            **self.extra,
        }
        return report

    def _rejection(self, test, test_ids, thresholds, labels) -> dict[str, Any]:
        """Cancer-vs-rest AUC on the ID test images kept by each method (Table 5 of the paper)."""
        positive = labels == self.positive_class
        result: dict[str, Any] = {}
        for method, id_score in test_ids.items():
            probs = test["ensemble_probabilities"] if method.startswith("ensemble_") else test["probabilities"]
            p = probs[:, self.positive_class]
            rows = {}
            for keep in [1.0, *self.keeps]:
                mask = np.ones_like(positive) if keep == 1.0 else id_score >= thresholds["methods"][method][str(keep)]
                auc = auc_after_rejection(positive, p, mask)
                stacked = np.stack([positive[mask], p[mask]], 1)
                low, high = (math.nan, math.nan)
                if mask.sum() > 1 and math.isfinite(auc):
                    low, high = bootstrap_ci(lambda a, _b: auc_after_rejection(a[:, 0], a[:, 1]), stacked,
                                             np.zeros(1), self.num_bootstrap, self.seed)  # fmt: skip
                rows[f"leave_out_{int(round((1 - keep) * 100))}"] = {
                    "auc": json_number(auc), "ci_low": json_number(low), "ci_high": json_number(high),
                    "kept": int(mask.sum()),
                }  # fmt: skip
            result[method] = rows
        return result

    def __call__(self, engine: Any) -> None:
        """Compute the report, add the evaluator's scalar metrics, write ``metrics.json``."""
        report = self.compute()
        for name, value in engine.state.metrics.items():
            if isinstance(value, (int, float)):
                report["metrics"][name] = json_number(value)
        write_json_atomic(self.path, report)
        engine.logger.info(f"metrics written to {self.path}")


class OODInferenceWriter(PerCaseWriter):
    """Evaluator handler writing one JSON per image: class probabilities, every OOD score and the ID flag.

    At each iteration it re-runs the batch's preprocessed images through ``forward_exits`` (and the ensemble),
    so the evaluator's own ``pred`` stays the final class probabilities that MONAI Label expects.

    Args:
        network: the trained multi-exit network.
        thresholds_path: JSON written by :func:`write_ood_thresholds` at the end of training.
        output_dir: where ``<image stem>.json`` files go.
        class_names: class names in label order.
        flag_method: method whose threshold sets ``in_distribution`` (default: the paper's multi-level energy).
        keep: calibration fraction kept as ID (0.95 or 0.80).
        ensemble_dir, member_factory: the deep ensemble (used when present).
        device: inference device.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        thresholds_path: str | Path,
        output_dir: str | Path,
        class_names: Sequence[str] = ("normal", "benign", "malignant"),
        flag_method: str = "energy_multilevel",
        keep: float = 0.95,
        ensemble_dir: str | Path | None = None,
        member_factory: Callable[[], torch.nn.Module] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if flag_method not in OOD_METHODS:
            raise ValueError(f"flag_method must be one of {OOD_METHODS}, got '{flag_method}'")
        super().__init__(output_dir, class_names, parent_in_name=True)  # the class or OOD-set folder
        self.network = network
        self.thresholds_path = Path(thresholds_path)
        self.flag_method = flag_method
        self.keep = keep
        self.ensemble_dir = ensemble_dir
        self.member_factory = member_factory
        self.device = device
        self.thresholds: dict[str, Any] | None = None
        self.members: list[torch.nn.Module] = []

    def attach(self, engine: Any) -> None:
        """Load the thresholds (and ensemble) at the start; write after every iteration."""
        engine.add_event_handler(Events.STARTED, self._load)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def _load(self, engine: Any = None) -> None:
        if not self.thresholds_path.is_file():
            raise FileNotFoundError(
                f"{self.thresholds_path}: no OOD thresholds; they are written at the end of training (train.yaml)"
            )
        self.thresholds = json.loads(self.thresholds_path.read_text())
        if str(self.keep) not in self.thresholds["methods"].get(self.flag_method, {}):
            raise ValueError(
                f"{self.thresholds_path} has no '{self.flag_method}' threshold for keep={self.keep} "
                f"(available: {sorted(self.thresholds['methods'])} at keeps {self.thresholds['keeps']})"
            )
        if self.ensemble_dir and self.member_factory:
            self.members = load_ensemble(self.ensemble_dir, self.member_factory, self.device)

    def records(self, engine: Any):
        """Score the iteration's images: one record per image with its probabilities, OOD scores and flags."""
        if self.thresholds is None:
            self._load()
        batch = engine.state.batch
        images = batch_images(batch).to(self.device)
        temperature = float(self.thresholds["temperature"])
        scores = score_datalist(self.network, self.members, [{"image": x} for x in images], lambda d: d,
                                self.device, temperature)  # fmt: skip
        rule = MultiLevelRule(np.asarray(self.thresholds["calibration_energy"]))
        ids = method_id_scores(scores, rule)
        flags = ood_flags(scores, self.thresholds, self.keep)
        for i, name in enumerate(source_names(batch, len(images))):
            probs = scores["probabilities"][i]
            record = {
                "image": name,
                "probabilities": {c: json_number(p) for c, p in zip(self.class_names, probs)},
                "predicted_class": self.class_names[int(probs.argmax())],
                "scores": {m: json_number(s[i]) for m, s in ids.items()},
                "score_convention": "higher = in-distribution (energy: -E; ensemble: minus the uncertainty; "
                "energy_multilevel: min over exits of the calibration CDF)",
                "thresholds": {m: json_number(self.thresholds["methods"][m][str(self.keep)]) for m in flags},
                "in_distribution_by_method": {m: bool(f[i]) for m, f in flags.items()},
                "flag_method": self.flag_method,
                "keep": self.keep,
                "in_distribution": bool(flags[self.flag_method][i]) if self.flag_method in flags else None,
            }
            if "ensemble_probabilities" in scores:
                record["ensemble_probabilities"] = {
                    c: json_number(p) for c, p in zip(self.class_names, scores["ensemble_probabilities"][i])
                }
            yield name, record
