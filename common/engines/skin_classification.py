"""Evaluation report and Grad-CAM inference output of the skin-lesion classifiers.

:class:`SkinClassificationReport` writes ``metrics.json``: per-class metrics of the multi-class prediction and, for
the melanoma detector (Bolelli et al.), the melanoma AUC, threshold metrics at 0.5 and at the validation-ROC
threshold, and the no-network baselines scoring the lesion's foreground ratio. :class:`GradCAMWriter` writes each
input's class probabilities (``<name>.json``) and a Grad-CAM overlay (``<name>_gradcam.png``).
:class:`ResumableEarlyStopHandler` is MONAI's early stopping with a state that the training checkpoints save, so a
resumed cutaneous run keeps its patience count and a run that stopped early is not continued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.handlers import EarlyStopHandler
from monai.utils import min_version, optional_import
from PIL import Image

from ..image_io import read_image_array
from ..metrics.binary_classification import binary_auroc
from ..metrics.classification_report import multiclass_summary, roc_optimal_threshold, threshold_metrics
from ..metrics.lesion_geometry import lesion_geometry_baselines
from .classification_outputs import (
    PerCaseWriter,
    ProbabilityCollector,
    batch_images,
    output_probabilities,
    source_names,
)
from .metrics_report import json_number, write_json_atomic

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = [
    "GradCAMWriter",
    "ResumableEarlyStopHandler",
    "SkinClassificationReport",
    "gradcam_overlay",
    "predict_probabilities",
]

logger = logging.getLogger(__name__)


class ResumableEarlyStopHandler(EarlyStopHandler):
    """``monai.handlers.EarlyStopHandler`` with ``state_dict`` / ``load_state_dict`` (patience counter, best score).

    List it in the ``state`` of :class:`~common.engines.TrainingCheckpoints`: a resumed run then counts patience on
    from where it stopped, and a run that had stopped early stops again at the trainer's start, before any epoch
    (nothing is trained or written). A larger ``patience`` lets such a run continue. Same arguments as MONAI's
    handler; the state may be loaded before :meth:`set_trainer` (it is applied then).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[str, Any] | None = None

    def set_trainer(self, trainer: Any) -> None:
        """Set the trainer to stop (MONAI's), apply a state loaded earlier, and check it at the trainer's start."""
        super().set_trainer(trainer)
        if self._pending is not None:
            self._apply(self._pending)
            self._pending = None
        trainer.add_event_handler(Events.STARTED, self._stop_if_stopped_before)

    def state_dict(self) -> dict[str, Any]:
        """``{"counter", "best_score"}`` of the patience count."""
        if self._handler is None:
            return {"counter": 0, "best_score": None} if self._pending is None else dict(self._pending)
        return {"counter": int(self._handler.counter), "best_score": self._handler.best_score}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the patience count (kept until :meth:`set_trainer` when there is no trainer yet)."""
        state = {"counter": int(state["counter"]), "best_score": state["best_score"]}
        if self._handler is None:
            self._pending = state
        else:
            self._apply(state)

    def _apply(self, state: Mapping[str, Any]) -> None:
        # ignite's own state has further keys (its settings, e.g. threshold_mode): keep the handler's
        self._handler.load_state_dict({**self._handler.state_dict(), **state})

    def _stop_if_stopped_before(self, trainer: Any) -> None:
        # runs after TrainingCheckpoints restored the state (it attached to the trainer first)
        if self._handler is not None and self._handler.counter >= self.patience:
            logger.info(
                f"training had stopped early after epoch {trainer.state.epoch} ({self._handler.counter} validations "
                f"without improvement, patience {self.patience}); nothing to do (a larger --patience continues it)"
            )
            trainer.terminate(skip_completed=True)


@torch.no_grad()
def predict_probabilities(
    network: torch.nn.Module,
    datalist: Sequence[Mapping[str, Any]],
    transform: Callable,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities ``(n, classes)`` and labels ``(n,)`` of a datalist through ``transform``."""
    network.eval()
    probs, labels = [], []
    for start in range(0, len(datalist), batch_size):
        items = [transform(dict(i)) for i in datalist[start : start + batch_size]]
        images = torch.stack([torch.as_tensor(i["image"]) for i in items]).to(device)
        probs.append(torch.softmax(network(images).float(), 1).cpu().numpy())
        labels += [int(i["label"]) for i in items]
    return np.concatenate(probs), np.asarray(labels)


class SkinClassificationReport(ProbabilityCollector):
    """Evaluator handler writing ``<output_dir>/metrics.json`` at the end of the evaluation.

    Always: ``accuracy``, ``balanced_accuracy``, macro and per-class precision / recall / F1 and the trivial
    baseline ``trivial_accuracy`` (always the most frequent class). With ``positive_class`` (the melanoma detector):
    ``melanoma_auc`` (AUC of that class's softmax probability) with ``trivial_melanoma_auc`` (a constant score,
    0.5), the threshold metrics at 0.5 (``*_at_0.5``) and at the validation-ROC threshold (``*_at_roc``; the
    threshold is fitted on ``threshold_datalist`` through ``network`` and ``transform``), and, when every test item
    has a ``mask``, the foreground-ratio baselines (``baseline_<score>_auc``, Bolelli et al. Table 6).

    Args:
        output_dir: where ``metrics.json`` goes.
        class_names: class names in logit order.
        positive_class: index of the detected class (0 = MEL) or ``None`` for a plain multi-class report.
        test_datalist: the evaluated items (their masks feed the baselines); optional.
        threshold_datalist: validation items for the ROC threshold; without them the 0.5 results are repeated.
        network, transform, device: to score ``threshold_datalist``.
        extra: more top-level fields for the report.
    """

    def __init__(
        self,
        output_dir: str | Path,
        class_names: Sequence[str],
        positive_class: int | None = None,
        test_datalist: Sequence[Mapping[str, Any]] | None = None,
        threshold_datalist: Sequence[Mapping[str, Any]] | None = None,
        network: torch.nn.Module | None = None,
        transform: Callable | None = None,
        device: torch.device | str = "cpu",
        extra: Mapping | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(output_dir) / "metrics.json"
        self.class_names = list(class_names)
        self.positive_class = positive_class
        self.test_datalist = list(test_datalist or [])
        self.threshold_datalist = list(threshold_datalist or [])
        self.network, self.transform, self.device = network, transform, device
        self.extra = dict(extra or {})

    def melanoma_metrics(self, probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Detector metrics of class ``positive_class`` (see the class docstring)."""
        c = int(self.positive_class)
        scores, positive = probs[:, c], (labels == c).astype(int)
        metrics = {"melanoma_auc": binary_auroc(scores, positive)}
        metrics["trivial_melanoma_auc"] = binary_auroc(np.full_like(scores, 0.5), positive)
        metrics.update({f"{k}_at_0.5": v for k, v in threshold_metrics(scores, positive, 0.5).items()})
        threshold = 0.5
        if self.threshold_datalist and self.network is not None and self.transform is not None:
            val_probs, val_labels = predict_probabilities(
                self.network, self.threshold_datalist, self.transform, self.device
            )
            threshold = roc_optimal_threshold(val_probs[:, c], (val_labels == c).astype(int))
        metrics["roc_threshold"] = threshold
        metrics.update({f"{k}_at_roc": v for k, v in threshold_metrics(scores, positive, threshold).items()})
        if self.test_datalist and all("mask" in i for i in self.test_datalist):
            masks = [np.asarray(read_image_array(i["mask"])) > 0 for i in self.test_datalist]
            masks = [m.any(-1) if m.ndim == 3 else m for m in masks]
            test_labels = np.asarray([int(i["label"]) == c for i in self.test_datalist], dtype=int)
            baselines = lesion_geometry_baselines(masks, test_labels)
            metrics.update({f"baseline_{k}": v for k, v in baselines.items()})
        return metrics

    def __call__(self, engine: Any) -> None:
        """Write the report of the epoch's collected probabilities."""
        probs = np.stack(self.probs)
        labels = np.asarray(self.labels)
        # the detector's metrics first: summaries (make demo) show the leading keys
        metrics = self.melanoma_metrics(probs, labels) if self.positive_class is not None else {}
        metrics.update(multiclass_summary(probs, labels, self.class_names))
        metrics["trivial_accuracy"] = float(np.bincount(labels).max() / len(labels))
        cases = {
            Path(name).name: {
                "label": self.class_names[int(y)],
                "probabilities": {c: round(float(v), 6) for c, v in zip(self.class_names, p)},
            }
            for name, p, y in zip(self.cases, probs, labels)
        }
        report = {
            "metrics": {k: json_number(v) for k, v in metrics.items()},
            "class_counts": {self.class_names[k]: int(n) for k, n in enumerate(np.bincount(labels)) if n},
            "cases": cases,
            "num_cases": len(labels),
            **self.extra,
        }
        write_json_atomic(self.path, report)
        key = "melanoma_auc" if self.positive_class is not None else "accuracy"
        engine.logger.info(
            f"{key} {metrics[key]:.3f} (trivial {metrics['trivial_' + key]:.3f}); written to {self.path}"
        )


def _unit_range(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of a batch ``(B, 1, ...)`` to [0, 1] (a constant map becomes 0)."""
    flat = maps.reshape(len(maps), -1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low).clamp_min(1e-12)).reshape(maps.shape)


def _colormap(heat: np.ndarray) -> np.ndarray:
    """A blue-to-red ramp (jet-like) of values in [0, 1]: (H, W) -> (H, W, 3) in [0, 1]."""
    h = np.clip(heat, 0, 1)[..., None]
    return np.clip(
        np.concatenate([1.5 - np.abs(4 * h - 3), 1.5 - np.abs(4 * h - 2), 1.5 - np.abs(4 * h - 1)], -1), 0, 1
    )


def gradcam_overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Side-by-side uint8 picture ``[input | input blended with the heat map]``.

    Args:
        image: network input ``(C, H, W)`` (any intensity range: shown min-max scaled; 1 channel shown as grey).
        heat: Grad-CAM map ``(H, W)`` in [0, 1].
        alpha: weight of the heat map in the blend.
    """
    x = np.asarray(image, dtype=np.float64)
    x = np.repeat(x[:1], 3, 0) if x.shape[0] == 1 else x[:3]
    x = (x - x.min()) / (np.ptp(x) + 1e-8)
    rgb = np.transpose(x, (1, 2, 0))
    blend = (1 - alpha) * rgb + alpha * _colormap(np.asarray(heat, dtype=np.float64))
    return (np.concatenate([rgb, blend], 1) * 255).round().astype(np.uint8)


class GradCAMWriter(PerCaseWriter):
    """Inference handler writing, per input, ``<name>.json`` and ``<name>_gradcam.png``.

    ``<name>.json`` holds the class probabilities and the predicted class, ``<name>_gradcam.png`` the network input
    beside its Grad-CAM overlay for the explained class.

    Images are stored as MONAI's PNG reader returns them (axis 0 = width), so the overlay is transposed back for
    viewing.

    Args:
        network: the classifier (the same module the evaluator runs).
        target_layer: layer name for ``monai.visualize.GradCAM`` (``common.networks.gradcam_target_layer``).
        output_dir: output folder.
        class_names: class names in logit order.
        explain_class: class index to explain (e.g. 0 = melanoma) or ``None`` for each image's predicted class.
        image_key: the network input's key in the batch.
    """  # noqa: D205

    def __init__(
        self,
        network: torch.nn.Module,
        target_layer: str,
        output_dir: str | Path,
        class_names: Sequence[str],
        explain_class: int | None = None,
        image_key: str = "image",
    ) -> None:
        super().__init__(output_dir, class_names, parent_in_name=False)
        self.network = network
        self.target_layer = target_layer
        self.explain_class = explain_class
        self.image_key = image_key
        self._cam = None

    def cam(self, images: torch.Tensor, class_index: int) -> np.ndarray:
        """Grad-CAM maps ``(B, H, W)`` in [0, 1] of ``class_index`` for a batch of network inputs."""
        if self._cam is None:  # hooks are registered once
            from monai.visualize import GradCAM

            # MONAI's default post-processing scales each map to [1, 0] (high activation -> 0); keep 1 = evidence
            self._cam = GradCAM(nn_module=self.network, target_layers=self.target_layer, postprocessing=_unit_range)
        with torch.enable_grad():  # evaluators run without gradients
            heat = self._cam(images.detach().clone().requires_grad_(True), class_idx=class_index)
        return heat[:, 0].detach().cpu().numpy()

    def records(self, engine: Any):
        """One record per item (probabilities, predicted and explained class); writes its Grad-CAM picture beside it."""
        probs = output_probabilities(engine.state.output)
        names = source_names(engine.state.batch, len(probs))
        images = batch_images(engine.state.batch, self.image_key).to(next(self.network.parameters()).device)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for k, (name, p) in enumerate(zip(names, probs)):
            predicted = int(np.argmax(p))
            explained = predicted if self.explain_class is None else int(self.explain_class)
            heat = self.cam(images[k : k + 1].as_subclass(torch.Tensor), explained)[0]
            image = np.swapaxes(images[k].detach().cpu().numpy(), 1, 2)  # MONAI's (C, W, H) -> (C, H, W)
            stem = self.case_stem(name)
            tmp = self.output_dir / f".{stem}_gradcam.png.tmp"
            Image.fromarray(gradcam_overlay(image, heat.T)).save(tmp, format="PNG")
            tmp.replace(self.output_dir / f"{stem}_gradcam.png")
            yield (
                name,
                {
                    "image": name,
                    "probabilities": {c: float(v) for c, v in zip(self.class_names, p)},
                    "predicted_class": self.class_names[predicted],
                    "gradcam_class": self.class_names[explained],
                },
            )
