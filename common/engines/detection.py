"""Training, evaluation, metrics, report and inference output for 2D box detection with MONAI's ``RetinaNetDetector``.

The pattern is model-zoo's lung_nodule_ct_detection: the data loaders use ``monai.data.utils.no_collation`` (a batch
is a list of per-image dicts ``{"image": (C, W, H), "box": (N, 4), "label": (N,)}``, boxes ``[x1, y1, x2, y2]`` with
x along the first spatial axis), the bundle configures the detector through ``detector_ops`` run by ``_requires_``,
and the engines hold the detector rather than the bare network:

- :class:`DetectionTrainer` (a ``monai.engines.Trainer``) calls ``detector(images, targets)`` in train mode and
  optimises classification + box-regression loss;
- :class:`DetectionEvaluator` (a ``monai.engines.Evaluator``) calls ``detector(images, use_inferer=True)`` (MONAI
  Label's detection call) and outputs one dict per image with the ground truth and ``pred_box`` / ``pred_label`` /
  ``pred_score``, which an optional ``postprocessing`` (e.g. :class:`~common.transforms.BoxesToOriginald`) maps per
  image;
- :class:`DetectionMAPMetric` is the validation key metric (COCO-style mAP over IoU 0.1:0.05:0.5, the calcification
  paper's model selection);
- :class:`DetectionReport` writes ``metrics.json`` (FROC, TPR at FPpI, AUFC, mAP, precision / recall / F1, patient
  bootstrap intervals) with the same numbers for the trivial detector :func:`brightest_region_baseline`;
- :class:`DetectionWriter` writes each image's detections (MONAI Label's layout), one CSV and an overlay picture.

Both engines expose ``network`` (``detector.network``): the object :class:`~common.engines.TrainingCheckpoints`
saves as ``model.pt`` and MONAI Label's ``CheckpointLoader`` loads into (``network: "$@detector.network"`` in a
config). Multi-process training wraps it in place before the trainer is built::

    detector.network = common.distributed.wrap(detector.network, device)

``RetinaNetDetector`` reads the network's attributes (``spatial_dims``, ``num_classes``, ``size_divisible``, keys)
once, in its constructor, and afterwards only calls ``self.network(images)`` (or passes it to the sliding-window
inferer), so a ``DistributedDataParallel`` wrapper set afterwards is used transparently; ``TrainingCheckpoints``
unwraps it when saving.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from monai.data import MetaTensor
from monai.engines import Evaluator, Trainer
from monai.engines.utils import IterationEvents, default_metric_cmp_fn
from monai.utils import ForwardMode, min_version, optional_import

from ..distributed import is_main_process
from ..metrics.detection import (
    aufc,
    best_f1_threshold,
    coco_map,
    froc_curve,
    hit_criterion,
    patient_bootstrap,
    precision_recall_f1,
    sensitivity_at_fppi,
)
from .metrics_report import json_number, summary_table, write_json_atomic, write_text_atomic

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")
Metric, _ = optional_import("ignite.metrics", "0.4.11", min_version, "Metric")
NotComputableError, _ = optional_import("ignite.exceptions", "0.4.11", min_version, "NotComputableError")

__all__ = [
    "DETECTION_IOU_THRESHOLDS",
    "DetectionEvaluator",
    "DetectionFROCMetric",
    "DetectionMAPMetric",
    "DetectionReport",
    "DetectionTrainer",
    "DetectionWriter",
    "brightest_region_baseline",
]

logger = logging.getLogger(__name__)

DETECTION_IOU_THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in np.round(np.arange(0.1, 0.51, 0.05), 2))
"""IoU thresholds 0.10:0.05:0.50 of the calcification-cluster paper's model selection (mAP over them)."""


# ---- shared helpers ---------------------------------------------------------------------------------------------


def _plain(x: Any) -> torch.Tensor:
    """A plain tensor (MetaTensor meta dropped: the detector pads and stacks, the meta is not needed there)."""
    if isinstance(x, MetaTensor):
        return x.as_tensor()
    return torch.as_tensor(x)


def _numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _boxes(x: Any) -> np.ndarray:
    return _numpy(x).reshape(-1, 4) if x is not None else np.zeros((0, 4))


def _vector(x: Any, dtype: Any = np.float64) -> np.ndarray:
    return _numpy(x, dtype).reshape(-1) if x is not None else np.zeros(0, dtype=dtype)


def _meta(x: Any) -> Mapping[str, Any]:
    return getattr(x, "meta", None) or {}


def _items(batchdata: Any) -> list[Mapping[str, Any]]:
    """Per-image dicts of a ``no_collation`` batch (lists of crops of one image, as ``num_samples`` gives, flattened).

    Raises:
        ValueError: a collated batch (a dict) or items that are not dicts.
    """
    if batchdata is None:
        raise ValueError("the detection engines need batch data (a list of per-image dicts)")
    if isinstance(batchdata, Mapping):
        raise ValueError(
            "detection batches must be lists of per-image dicts: give the data loader "
            "collate_fn=monai.data.utils.no_collation (images and box counts differ between images)"
        )
    items: list[Mapping[str, Any]] = []
    for item in batchdata:
        if isinstance(item, Mapping):
            items.append(item)
        elif isinstance(item, (list, tuple)) and all(isinstance(i, Mapping) for i in item):
            items.extend(item)
        else:
            raise ValueError(f"a detection batch holds dicts (or lists of dicts), got {type(item).__name__}")
    return items


def _output_items(output: Any) -> list[Mapping[str, Any]]:
    if output is None:
        return []
    if isinstance(output, Mapping):
        return [output]
    return [o for o in output if isinstance(o, Mapping)]


def _iteration_items(engine: Any) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """The iteration's output items, each with its batch item (``{}`` for all when the two do not line up)."""
    outputs = _output_items(engine.state.output)
    batch = engine.state.batch
    batch_items = _items(batch) if isinstance(batch, (list, tuple)) else []
    batch_items = batch_items if len(batch_items) == len(outputs) else [{}] * len(outputs)
    return list(zip(outputs, batch_items))


def _image_name(item: Mapping[str, Any], batch_item: Mapping[str, Any] | None, image_key: str, default: str) -> str:
    for source in (item, batch_item or {}):
        name = _meta(source.get(image_key)).get("filename_or_obj")
        if isinstance(name, str) and name:
            return name
    return default


def _stem(name: str) -> str:
    return Path(name).name.split(".", 1)[0]


def _gather(objects: list[Any]) -> list[Any]:
    """Concatenate every rank's list (the list itself in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return objects
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, objects)
    return [o for part in gathered for o in part]


def _autocast(enabled: bool, device: torch.device, kwargs: Mapping[str, Any]) -> Any:
    return torch.autocast(device_type=device.type, **kwargs) if enabled else contextlib.nullcontext()


# ---- engines ----------------------------------------------------------------------------------------------------


class DetectionTrainer(Trainer):
    """Supervised training of a MONAI ``RetinaNetDetector`` (model-zoo's lung_nodule_ct_detection trainer).

    Each iteration takes a ``no_collation`` batch (a list of ``{"image", "box", "label"}`` dicts; nested lists of
    random crops are flattened), moves it to ``device``, calls ``detector(images, targets)`` in train mode and
    back-propagates ``w_cls * classification + w_box * box_regression``. The output is
    ``{"image", "label" (the targets), "loss", "classification_loss", "box_regression_loss"}`` (detached losses), so
    a ``StatsHandler`` logs ``from_engine(['loss'], first=True)``.

    A batch without any positive anchor gives MONAI's constant box loss, which leaves the regression head without a
    gradient; a ``DistributedDataParallel`` network would then wait for that gradient forever (or raise). Such a loss
    gets a zero term through every trainable parameter, so every parameter receives a (zero) gradient.

    Args:
        device: training device.
        max_epochs: epochs to train.
        train_data_loader: loader with ``collate_fn=monai.data.utils.no_collation``.
        detector: a ``RetinaNetDetector`` with its matcher, sampler and losses set (``detector_ops``); its
            ``network`` may be DDP-wrapped (see the module docstring).
        optimizer: optimizer of ``detector.network``'s parameters.
        lr_scheduler: stepped once at the end of every epoch (schedules counted in epochs, as
            ``common.networks.make_optimizer_and_scheduler`` builds them); list it in ``TrainingCheckpoints``'
            ``state`` to resume it.
        epoch_length: iterations per epoch (default: the loader's length).
        non_blocking: asynchronous host-to-device copies.
        iteration_update: replaces :meth:`_iteration`.
        postprocessing: transform of the output dict.
        key_train_metric: ignite metric(s) on the training outputs.
        additional_metrics: more ignite metrics.
        metric_cmp_fn: compares a key metric with the best so far.
        train_handlers: handlers with ``attach`` (``ValidationHandler``, ``StatsHandler``, ``TrainingCheckpoints``).
        amp: mixed precision (``torch.autocast`` on the device; gradient scaling on CUDA).
        event_names: extra ignite events.
        event_to_attr: event-to-state mapping of ``event_names``.
        decollate: MONAI's decollation of the output (off: the output is not batch-first).
        optim_set_to_none: ``zero_grad(set_to_none=...)``.
        to_kwargs: further ``Tensor.to`` arguments.
        amp_kwargs: further ``torch.autocast`` arguments.
        loss_weights: ``(w_cls, w_box)``.
        image_key: image key of the batch items.
        box_key: gt box key of the batch items.
        label_key: gt label key of the batch items.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        detector: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        lr_scheduler: Any = None,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        iteration_update: Callable | None = None,
        postprocessing: Callable | None = None,
        key_train_metric: dict[str, Any] | None = None,
        additional_metrics: dict[str, Any] | None = None,
        metric_cmp_fn: Callable = default_metric_cmp_fn,
        train_handlers: Sequence | None = None,
        amp: bool = False,
        event_names: list | None = None,
        event_to_attr: dict | None = None,
        decollate: bool = False,
        optim_set_to_none: bool = False,
        to_kwargs: dict | None = None,
        amp_kwargs: dict | None = None,
        loss_weights: Sequence[float] = (1.0, 1.0),
        image_key: str = "image",
        box_key: str = "box",
        label_key: str = "label",
    ) -> None:
        # set before the handlers attach (in Workflow.__init__), so that they may read engine.network
        self.detector = detector
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.optim_set_to_none = optim_set_to_none
        self.loss_weights = tuple(float(w) for w in loss_weights)
        if len(self.loss_weights) != 2:
            raise ValueError(f"loss_weights must be (classification, box regression), got {loss_weights}")
        self.image_key, self.box_key, self.label_key = image_key, box_key, label_key
        super().__init__(
            device=device,
            max_epochs=max_epochs,
            data_loader=train_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            iteration_update=iteration_update,
            postprocessing=postprocessing,
            key_metric=key_train_metric,
            additional_metrics=additional_metrics,
            metric_cmp_fn=metric_cmp_fn,
            handlers=train_handlers,
            amp=amp,
            event_names=event_names,
            event_to_attr=event_to_attr,
            decollate=decollate,
            to_kwargs=to_kwargs,
            amp_kwargs=amp_kwargs,
        )
        if lr_scheduler is not None:
            self.add_event_handler(Events.EPOCH_COMPLETED, self._step_scheduler)

    @property
    def network(self) -> torch.nn.Module:
        """``detector.network`` (possibly DDP-wrapped): what is optimised, checkpointed and exported."""
        return self.detector.network

    @network.setter
    def network(self, network: torch.nn.Module) -> None:
        self.detector.network = network

    def _step_scheduler(self, engine: Any) -> None:
        self.lr_scheduler.step()

    def _iteration(self, engine: Any, batchdata: Any) -> dict[str, Any]:
        """One optimisation step on a ``no_collation`` batch; returns the losses (see the class docstring)."""
        items = _items(batchdata)
        device, kwargs = engine.state.device, engine.to_kwargs
        images = [_plain(i[self.image_key]).to(device, non_blocking=engine.non_blocking, **kwargs) for i in items]
        detector = engine.detector
        targets = [
            {
                detector.target_box_key: _plain(i[self.box_key]).float().reshape(-1, 4).to(device),
                detector.target_label_key: _plain(i[self.label_key]).long().reshape(-1).to(device),
            }
            for i in items
        ]
        engine.state.output = {"image": images, "label": targets}
        detector.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with _autocast(engine.amp, torch.device(device), engine.amp_kwargs):
            losses = detector(images, targets)
            cls_loss, box_loss = losses[detector.cls_key], losses[detector.box_reg_key]
            loss = self.loss_weights[0] * cls_loss + self.loss_weights[1] * box_loss
        if not box_loss.requires_grad:  # no positive anchor in the batch: keep every parameter in the graph (DDP)
            loss = loss + sum(p.sum() * 0.0 for p in detector.network.parameters() if p.requires_grad)
        engine.state.output.update(
            loss=loss.detach(), classification_loss=cls_loss.detach(), box_regression_loss=box_loss.detach()
        )
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        scaler = engine.scaler if engine.amp and torch.device(device).type == "cuda" else None
        if scaler is not None:
            scaler.scale(loss).backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            scaler.step(engine.optimizer)
            scaler.update()
        else:
            loss.backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            engine.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


class DetectionEvaluator(Evaluator):
    """Evaluation or inference with a MONAI ``RetinaNetDetector``: one output dict per image.

    Each iteration calls ``detector(images, use_inferer=use_inferer)`` in eval mode without gradients (MONAI
    Label's call; the sliding-window inferer is set by ``detector_ops``) and outputs, per image,
    ``{"image", "box", "label" (the gt, when the item has them), "pred_box", "pred_label", "pred_score"}``, the
    predictions on the CPU and ``image`` the item's own (CPU) image with its meta data. ``postprocessing`` runs on
    each image's batch item and output together (MONAI's per-item post-processing of list batches), e.g.
    ``BoxesToOriginald(keys=["box", "pred_box"])`` to return to the file's pixels. The output is already one dict
    per image, so MONAI's decollation is not used.

    Args:
        device: evaluation device.
        val_data_loader: loader with ``collate_fn=monai.data.utils.no_collation``.
        detector: the ``RetinaNetDetector`` (box selection set by ``detector_ops``).
        epoch_length: iterations per epoch (default: the loader's length).
        non_blocking: asynchronous host-to-device copies.
        iteration_update: replaces :meth:`_iteration`.
        postprocessing: per-image transform of the item and its output.
        key_val_metric: e.g. ``{"val_map": DetectionMAPMetric()}`` (what ``TrainingCheckpoints`` maximises).
        additional_metrics: more ignite metrics.
        metric_cmp_fn: compares a key metric with the best so far.
        val_handlers: handlers with ``attach`` (:class:`DetectionReport`, :class:`DetectionWriter`).
        amp: ``torch.autocast`` on the device.
        mode: ``"eval"`` (default) or ``"train"`` forward mode of the detector.
        event_names: extra ignite events.
        event_to_attr: event-to-state mapping of ``event_names``.
        to_kwargs: further ``Tensor.to`` arguments.
        amp_kwargs: further ``torch.autocast`` arguments.
        use_inferer: use the detector's sliding-window inferer (needs ``set_sliding_window_inferer``); False runs
            the network on the whole padded image.
        image_key: image key of the batch items.
        box_key: gt box key of the batch items (and of the output).
        label_key: gt label key of the batch items (and of the output).
    """

    def __init__(
        self,
        device: str | torch.device,
        val_data_loader: Iterable,
        detector: torch.nn.Module,
        epoch_length: int | None = None,
        non_blocking: bool = False,
        iteration_update: Callable | None = None,
        postprocessing: Callable | None = None,
        key_val_metric: dict[str, Any] | None = None,
        additional_metrics: dict[str, Any] | None = None,
        metric_cmp_fn: Callable = default_metric_cmp_fn,
        val_handlers: Sequence | None = None,
        amp: bool = False,
        mode: ForwardMode | str = ForwardMode.EVAL,
        event_names: list | None = None,
        event_to_attr: dict | None = None,
        to_kwargs: dict | None = None,
        amp_kwargs: dict | None = None,
        use_inferer: bool = True,
        image_key: str = "image",
        box_key: str = "box",
        label_key: str = "label",
    ) -> None:
        self.detector = detector
        self.use_inferer = bool(use_inferer)
        self.image_key, self.box_key, self.label_key = image_key, box_key, label_key
        super().__init__(
            device=device,
            val_data_loader=val_data_loader,
            epoch_length=epoch_length,
            non_blocking=non_blocking,
            iteration_update=iteration_update,
            postprocessing=postprocessing,
            key_val_metric=key_val_metric,
            additional_metrics=additional_metrics,
            metric_cmp_fn=metric_cmp_fn,
            val_handlers=val_handlers,
            amp=amp,
            mode=mode,
            event_names=event_names,
            event_to_attr=event_to_attr,
            decollate=False,
            to_kwargs=to_kwargs,
            amp_kwargs=amp_kwargs,
        )

    @property
    def network(self) -> torch.nn.Module:
        """``detector.network``: where a ``CheckpointLoader`` loads ``model.pt``."""
        return self.detector.network

    @network.setter
    def network(self, network: torch.nn.Module) -> None:
        self.detector.network = network

    def _iteration(self, engine: Any, batchdata: Any) -> list[dict[str, Any]]:
        """Detect on every image of a ``no_collation`` batch; returns one dict per image (see the class)."""
        items = [dict(i) for i in _items(batchdata)]  # copies: per-item post-processing writes into them
        engine.state.batch = items
        device = engine.state.device
        images = [
            _plain(i[self.image_key]).to(device, non_blocking=engine.non_blocking, **engine.to_kwargs) for i in items
        ]
        detector = engine.detector
        with engine.mode(detector), _autocast(engine.amp, torch.device(device), engine.amp_kwargs):
            detections = detector(images, use_inferer=self.use_inferer)
        outputs = []
        for item, found in zip(items, detections):
            output: dict[str, Any] = {self.image_key: item[self.image_key]}
            for key in (self.box_key, self.label_key):
                if key in item:
                    output[key] = item[key]
            output["pred_box"] = found[detector.target_box_key].detach().float().cpu()
            output["pred_label"] = found[detector.target_label_key].detach().cpu()
            output["pred_score"] = found[detector.pred_score_key].detach().float().cpu()
            outputs.append(output)
        engine.state.output = outputs
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


# ---- key metric -------------------------------------------------------------------------------------------------


class DetectionMAPMetric(Metric):
    """Ignite metric: COCO-style mAP (:func:`common.metrics.coco_map`) of an evaluator's per-image outputs.

    It reads the evaluator's output (a list of per-image dicts, or one dict) and accumulates each image's predicted
    boxes and scores and its gt boxes; at the end of the epoch it returns the mean average precision over
    ``iou_thresholds`` (101-point interpolation). In a process group every rank's images are gathered first.
    A set without any gt box scores 0.0 (with a warning) rather than NaN, which a checkpoint's JSON could not hold.

    Args:
        iou_thresholds: IoU thresholds, 0.1:0.05:0.5 by default (:data:`DETECTION_IOU_THRESHOLDS`).
        labels: classes for a class-wise mean (then predictions and gt need labels); None pools all boxes.
        recall_points: see :func:`common.metrics.average_precision` (None: all-point AP).
        output_transform: maps the engine's output to the per-image dicts.
        box_key: gt box key.
        label_key: gt label key (with ``labels``).
        pred_box_key: predicted box key.
        pred_score_key: predicted score key.
        pred_label_key: predicted label key (with ``labels``).
        device: ignite's metric device (unused: the computation is on numpy).
    """

    def __init__(
        self,
        iou_thresholds: Sequence[float] = DETECTION_IOU_THRESHOLDS,
        labels: Sequence[Any] | None = None,
        recall_points: int | None = 101,
        output_transform: Callable = lambda x: x,
        box_key: str = "box",
        label_key: str = "label",
        pred_box_key: str = "pred_box",
        pred_score_key: str = "pred_score",
        pred_label_key: str = "pred_label",
        device: str | torch.device = "cpu",
    ) -> None:
        self.iou_thresholds = tuple(float(t) for t in np.asarray(iou_thresholds, dtype=np.float64).reshape(-1))
        if not self.iou_thresholds:
            raise ValueError("iou_thresholds must not be empty")
        self.labels = None if labels is None else list(labels)
        self.recall_points = recall_points
        self.keys = (box_key, label_key, pred_box_key, pred_score_key, pred_label_key)
        self._images: list[dict[str, Any]] = []
        super().__init__(output_transform=output_transform, device=device)

    def reset(self) -> None:
        """Forget the accumulated images."""
        self._images = []

    def update(self, output: Any) -> None:
        """Add the images of one iteration's output (a list of per-image dicts, or one dict)."""
        box_key, label_key, pred_box_key, pred_score_key, pred_label_key = self.keys
        for item in _output_items(output):
            image = {
                "pred_boxes": _boxes(item.get(pred_box_key)),
                "pred_scores": _vector(item.get(pred_score_key)),
                "gt_boxes": _boxes(item.get(box_key)),
            }
            if self.labels is not None:
                image["pred_labels"] = _vector(item.get(pred_label_key), np.int64)
                image["gt_labels"] = _vector(item.get(label_key), np.int64)
            self._images.append(image)

    def iteration_completed(self, engine: Any) -> None:
        """Update from ``engine.state.output`` (a list of dicts, which ignite's default would not accept)."""
        self.update(self._output_transform(engine.state.output))

    def compute(self) -> float:
        """MAP over the IoU thresholds of all accumulated (and gathered) images.

        Raises:
            NotComputableError: no image was seen.
        """
        images = _gather(self._images)
        if not images:
            raise NotComputableError("DetectionMAPMetric needs at least one image before it can be computed")
        value = coco_map(images, self.iou_thresholds, self.labels, self.recall_points)
        if not math.isfinite(value):
            logger.warning("DetectionMAPMetric: no ground-truth box in the evaluated images; mAP set to 0.0")
            return 0.0
        return float(value)


class DetectionFROCMetric(DetectionMAPMetric):
    """Ignite metric: a FROC statistic (AUFC over an FPpI range, or TPR at an FPpI) of an evaluator's outputs.

    It accumulates images as :class:`DetectionMAPMetric` does and scores them with the code of
    :class:`DetectionReport` (:func:`common.metrics.froc_curve` with ``criterion``, then :func:`common.metrics.aufc`
    or :func:`common.metrics.sensitivity_at_fppi`), so that a key metric named like a report entry (``aufc_0_1``,
    ``tpr_at_0.1_fppi``) has the report's value. A set without any gt box scores 0.0 (with a warning).

    Args:
        statistic: ``"aufc"`` (normalised area under the FROC over ``fppi_range``) or ``"tpr"`` (sensitivity at a
            mean FPpI of at most ``fppi``).
        fppi_range: ``(low, high)`` FPpI range of the AUFC.
        fppi: FPpI budget of the TPR.
        criterion: hit criterion spec (:func:`common.metrics.hit_criterion`).
        output_transform: maps the engine's output to the per-image dicts.
        box_key: gt box key.
        pred_box_key: predicted box key.
        pred_score_key: predicted score key.
        device: ignite's metric device (unused: the computation is on numpy).

    Raises:
        ValueError: an unknown statistic or an invalid range.
    """

    def __init__(
        self,
        statistic: str = "aufc",
        fppi_range: Sequence[float] = (0.0, 1.0),
        fppi: float = 0.1,
        criterion: Any = "iou:0.1",
        output_transform: Callable = lambda x: x,
        box_key: str = "box",
        pred_box_key: str = "pred_box",
        pred_score_key: str = "pred_score",
        device: str | torch.device = "cpu",
    ) -> None:
        if statistic not in ("aufc", "tpr"):
            raise ValueError(f"statistic must be 'aufc' or 'tpr', got '{statistic}'")
        low, high = (float(v) for v in fppi_range)
        if not 0.0 <= low < high:
            raise ValueError(f"fppi_range must be (low, high) with 0 <= low < high, got {list(fppi_range)}")
        self.statistic, self.fppi_range, self.fppi = statistic, (low, high), float(fppi)
        self.criterion = hit_criterion(criterion)
        super().__init__(output_transform=output_transform, box_key=box_key, pred_box_key=pred_box_key,
                         pred_score_key=pred_score_key, device=device)  # fmt: skip

    def compute(self) -> float:
        """The statistic over all accumulated (and gathered) images.

        Raises:
            NotComputableError: no image was seen.
        """
        images = _gather(self._images)
        if not images:
            raise NotComputableError("DetectionFROCMetric needs at least one image before it can be computed")
        froc = froc_curve(images, self.criterion)
        if self.statistic == "aufc":
            value = aufc(froc, self.fppi_range)
        else:
            value = float(sensitivity_at_fppi(froc, self.fppi))
        if not math.isfinite(value):
            logger.warning("DetectionFROCMetric: no ground-truth box in the evaluated images; set to 0.0")
            return 0.0
        return float(value)


# ---- trivial baseline -------------------------------------------------------------------------------------------


def brightest_region_baseline(
    image: Any, box_size: float | Sequence[float], sigma: float | Sequence[float] | None = None
) -> tuple[np.ndarray, float]:
    """The trivial detector: one box per image, over its brightest region.

    The image (channels averaged) is smoothed with a Gaussian of ``sigma`` (default a quarter of the box side) and
    the box of ``box_size`` is centred on the smoothed maximum (pixel ``i`` spans ``[i, i + 1)``), shifted inside the
    image when it would cross a border (and cut to the image when larger). Its score is that smoothed maximum, so
    a FROC over images ranks the images by their brightest spot.

    Args:
        image: ``(C, W, H)`` or ``(W, H)`` array or tensor (MONAI's detection layout: x along the first spatial
            axis).
        box_size: box side, or ``(x side, y side)``, in pixels.
        sigma: Gaussian standard deviation in pixels (one value or one per axis).

    Returns:
        ``(box, score)``: ``[x1, y1, x2, y2]`` float array and the smoothed maximum.

    Raises:
        ValueError: an image that is not 2D (after the channel axis) or a non-positive box size.
    """
    from scipy.ndimage import gaussian_filter

    x = _numpy(image)
    if x.ndim == 3:
        x = x.mean(axis=0)
    if x.ndim != 2 or min(x.shape) == 0:
        raise ValueError(f"brightest_region_baseline needs a (C, W, H) or (W, H) image, got shape {x.shape}")
    size = np.broadcast_to(np.asarray(box_size, dtype=np.float64), (2,)).copy()
    if not (size > 0).all():
        raise ValueError(f"box_size must be positive, got {box_size}")
    spread = size / 4.0 if sigma is None else np.broadcast_to(np.asarray(sigma, dtype=np.float64), (2,))
    smooth = gaussian_filter(x, sigma=tuple(float(s) for s in spread), mode="nearest")
    i, j = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    extent = np.asarray(x.shape, dtype=np.float64)
    size = np.minimum(size, extent)
    low = np.clip(np.array([i + 0.5, j + 0.5]) - size / 2.0, 0.0, extent - size)
    return np.concatenate([low, low + size]), float(smooth[i, j])


# ---- report -----------------------------------------------------------------------------------------------------


def _froc_points(froc: Any) -> list[dict[str, float | None]]:
    """The corners of the FROC step curve (each sensitivity's first point, and the last point), by FPpI.

    Dropped points repeat the previous sensitivity at a higher FPpI, so TPR at any FPpI and the AUFC are the same
    from the kept points.
    """
    n = len(froc.thresholds)
    keep = [k for k in range(n) if k == 0 or k == n - 1 or not froc.sensitivity[k] <= froc.sensitivity[k - 1]]
    return [
        {
            "fppi": json_number(froc.fppi[k]),
            "sensitivity": json_number(froc.sensitivity[k]),
            "threshold": json_number(froc.thresholds[k]),
        }
        for k in keep
    ]


class DetectionReport:
    """Evaluator handler writing ``<output_dir>/<filename>`` (``metrics.json``) at the end of every evaluation.

    Collected per image (the evaluator's outputs, after its post-processing): predicted boxes and scores, gt boxes,
    the patient (the item's ``patient_key``, else the image meta's ``patient_id``; an image without one is its own
    patient) and the file name. Matching is class-agnostic (cluster level: any prediction may hit any gt box) with
    ``criterion``. ``metrics`` holds:

    - ``tpr_at_<f>_fppi`` for every ``f`` of ``fppi_points`` (lesion sensitivity at a mean FPpI of at most ``f``);
    - ``aufc_<low>_<high>`` for every range of ``aufc_ranges`` (normalised area under the FROC step curve);
    - ``map``: COCO-style mAP over ``iou_thresholds``;
    - ``precision_at_threshold`` / ``recall_at_threshold`` / ``f1_at_threshold`` at ``score_threshold`` (e.g. the
      validation set's best-F1 threshold), and ``best_f1`` with its ``best_f1_threshold``, ``best_f1_precision`` and
      ``best_f1_recall`` (chosen on this set: optimistic on a test set).

    ``confidence_intervals`` gives patient-level percentile bootstrap intervals (``n_resamples``, ``level``) of the
    TPRs and AUFCs (every statistic on the same resamples); ``froc`` the curve's corner points
    ``{fppi, sensitivity, threshold}`` by increasing FPpI; ``trivial_baseline`` the same blocks for
    :func:`brightest_region_baseline` (one box of ``baseline_box_size`` per image, computed on the evaluator's
    ``image``, i.e. the network input, then mapped by ``baseline_postprocessing``, which must be the evaluator's box
    mapping when that moves the predictions, e.g. ``BoxesToOriginald(keys="pred_box")``); then ``num_images``,
    ``num_patients``, ``num_clusters`` (gt boxes), ``num_normal_images``, per-image counts in ``cases`` and
    ``settings``. Undefined values (no gt) are null.

    In a process group every rank collects its shard (attach the handler on every rank), the lists are gathered
    and rank 0 writes.

    Args:
        output_dir: folder of the report.
        filename: report file name.
        criterion: hit criterion spec (:func:`common.metrics.hit_criterion`): ``"iou:0.1"``, ``"centre_distance:30"``.
        fppi_points: FPpI budgets of the TPRs.
        aufc_ranges: ``(low, high)`` FPpI ranges of the AUFCs.
        iou_thresholds: IoU thresholds of the mAP.
        score_threshold: score threshold of the precision / recall / F1.
        n_resamples: bootstrap resamples (0: no intervals).
        level: bootstrap confidence level.
        seed: bootstrap seed.
        baseline_box_size: side of the trivial detector's box in the network input's pixels (64: a mid-sized
            calcification cluster at the paper's 1280 x 800).
        baseline_sigma: its Gaussian smoothing (default a quarter of the box side).
        baseline_postprocessing: maps ``{image_key: image, pred_box_key: (1, 4) box}`` as the evaluator's
            post-processing maps predictions (None: the boxes stay in the network input's pixels).
        image_key: image key of the outputs.
        box_key: gt box key.
        pred_box_key: predicted box key.
        pred_score_key: predicted score key.
        patient_key: patient key of the outputs or batch items.
        extra: constant entries copied into the report.
    """

    def __init__(
        self,
        output_dir: str | Path,
        filename: str = "metrics.json",
        criterion: Any = "iou:0.1",
        fppi_points: Sequence[float] = (0.1, 0.5, 1.0),
        aufc_ranges: Sequence[Sequence[float]] = ((0.0, 0.1), (0.0, 1.0)),
        iou_thresholds: Sequence[float] = DETECTION_IOU_THRESHOLDS,
        score_threshold: float = 0.5,
        n_resamples: int = 1000,
        level: float = 0.95,
        seed: int = 0,
        baseline_box_size: float | Sequence[float] = 64,
        baseline_sigma: float | Sequence[float] | None = None,
        baseline_postprocessing: Callable | None = None,
        image_key: str = "image",
        box_key: str = "box",
        pred_box_key: str = "pred_box",
        pred_score_key: str = "pred_score",
        patient_key: str = "patient",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(output_dir) / filename
        self.criterion = hit_criterion(criterion)
        self.criterion_spec = criterion if isinstance(criterion, str) else repr(self.criterion)
        self.fppi_points = [float(f) for f in fppi_points]
        self.aufc_ranges = [(float(lo), float(hi)) for lo, hi in aufc_ranges]
        for low, high in self.aufc_ranges:
            if not 0.0 <= low < high:
                raise ValueError(f"aufc_ranges must be (low, high) with 0 <= low < high, got {list(aufc_ranges)}")
        if any(f < 0 for f in self.fppi_points):
            raise ValueError(f"fppi_points must be >= 0, got {list(fppi_points)}")
        self.iou_thresholds = [float(t) for t in iou_thresholds]
        self.score_threshold = float(score_threshold)
        if int(n_resamples) < 0:
            raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
        self.n_resamples, self.level, self.seed = int(n_resamples), float(level), int(seed)
        self.baseline_box_size = baseline_box_size
        self.baseline_sigma = baseline_sigma
        self.baseline_postprocessing = baseline_postprocessing
        self.image_key, self.box_key = image_key, box_key
        self.pred_box_key, self.pred_score_key, self.patient_key = pred_box_key, pred_score_key, patient_key
        self.extra = dict(extra or {})
        self.records: list[dict[str, Any]] = []

    def attach(self, engine: Any) -> None:
        """Collect at every iteration of ``engine`` and write at the end of each of its epochs."""
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _reset(self, engine: Any = None) -> None:
        self.records = []

    def _patient(self, item: Mapping[str, Any], batch_item: Mapping[str, Any]) -> Any:
        for source in (item, batch_item):
            if source.get(self.patient_key) is not None:
                return str(source[self.patient_key])
        for source in (item, batch_item):
            meta = _meta(source.get(self.image_key))
            for key in (self.patient_key, "patient_id"):
                if meta.get(key) is not None:
                    return str(meta[key])
        return None

    def _baseline(self, item: Mapping[str, Any], batch_item: Mapping[str, Any]) -> tuple[np.ndarray, float] | None:
        image = item.get(self.image_key, batch_item.get(self.image_key))
        if image is None:
            return None
        box, score = brightest_region_baseline(image, self.baseline_box_size, self.baseline_sigma)
        if self.baseline_postprocessing is not None:
            mapped = self.baseline_postprocessing({self.image_key: image, self.pred_box_key: torch.tensor(box[None])})
            box = _boxes(mapped[self.pred_box_key])[0]
        return box, score

    def _collect(self, engine: Any) -> None:
        for item, batch_item in _iteration_items(engine):
            gt = item.get(self.box_key, batch_item.get(self.box_key))
            self.records.append(
                {
                    "name": _image_name(item, batch_item, self.image_key, f"image_{len(self.records)}"),
                    "patient": self._patient(item, batch_item),
                    "pred_boxes": _boxes(item.get(self.pred_box_key)),
                    "pred_scores": _vector(item.get(self.pred_score_key)),
                    "gt_boxes": _boxes(gt),
                    "baseline": self._baseline(item, batch_item),
                }
            )

    # ---- computation ------------------------------------------------------------------------------------------

    def _names(self) -> list[str]:
        return [f"tpr_at_{f:g}_fppi" for f in self.fppi_points] + [f"aufc_{lo:g}_{hi:g}" for lo, hi in self.aufc_ranges]

    def _froc_values(self, froc: Any) -> dict[str, float]:
        values = {f"tpr_at_{f:g}_fppi": float(sensitivity_at_fppi(froc, f)) for f in self.fppi_points}
        values.update({f"aufc_{lo:g}_{hi:g}": aufc(froc, (lo, hi)) for lo, hi in self.aufc_ranges})
        return values

    def evaluate(self, images: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The report blocks ``metrics``, ``confidence_intervals`` and ``froc`` of per-image dicts.

        Args:
            images: ``{"pred_boxes", "pred_scores", "gt_boxes"}`` dicts, optionally with ``"patient"``
                (:mod:`common.metrics.detection`'s layout).

        Returns:
            ``{"metrics", "confidence_intervals", "froc"}``, values rounded, undefined ones None.
        """
        froc = froc_curve(images, self.criterion)
        metrics = self._froc_values(froc)
        metrics["map"] = coco_map(images, self.iou_thresholds)
        at = precision_recall_f1(images, self.criterion, self.score_threshold)
        metrics.update({f"{k}_at_threshold": v for k, v in at.items()})
        best = best_f1_threshold(images, self.criterion)
        metrics.update(
            best_f1=best["f1"],
            best_f1_threshold=best["threshold"],
            best_f1_precision=best["precision"],
            best_f1_recall=best["recall"],
        )
        intervals: dict[str, Any] = {"level": self.level, "n_resamples": self.n_resamples}
        if self.n_resamples:
            cache: dict[tuple[int, ...], dict[str, float]] = {}

            def values(resample: list) -> dict[str, float]:
                # every statistic is bootstrapped with the same seed, hence the same resamples: one FROC each
                key = tuple(map(id, resample))
                if key not in cache:
                    cache[key] = self._froc_values(froc_curve(resample, self.criterion))
                return cache[key]

            for name in self._names():
                result = patient_bootstrap(
                    images, lambda r, n=name: values(r)[n], self.n_resamples, self.seed, self.level
                )
                intervals[name] = [json_number(v) for v in result.ci]
        return {
            "metrics": {k: json_number(v) for k, v in metrics.items()},
            "confidence_intervals": intervals,
            "froc": _froc_points(froc),
        }

    def __call__(self, engine: Any) -> None:
        """Gather the epoch's images, compute the report and write it (rank 0)."""
        records = _gather(self.records)
        if not is_main_process():
            return
        if not records:
            engine.logger.warning(f"DetectionReport: no image was evaluated; {self.path} not written")
            return

        def image(record: Mapping[str, Any], boxes: Any, scores: Any) -> dict[str, Any]:
            d = {"pred_boxes": boxes, "pred_scores": scores, "gt_boxes": record["gt_boxes"]}
            if record["patient"] is not None:
                d["patient"] = record["patient"]
            return d

        report = self.evaluate([image(r, r["pred_boxes"], r["pred_scores"]) for r in records])
        baseline: dict[str, Any] | None = None
        if all(r["baseline"] is not None for r in records):
            baseline_images = [image(r, r["baseline"][0][None], [r["baseline"][1]]) for r in records]
            baseline = {
                "description": "one box per image centred on the maximum of the Gaussian-smoothed image "
                "(brightest_region_baseline), scored by that maximum",
                "box_size": self.baseline_box_size,
                "sigma": self.baseline_sigma,
                **self.evaluate(baseline_images),
            }
        else:
            engine.logger.warning("DetectionReport: the outputs hold no image; trivial_baseline is null")
        n_gt = [len(r["gt_boxes"]) for r in records]
        patients = {r["patient"] if r["patient"] is not None else ("image", k) for k, r in enumerate(records)}
        cases = {
            Path(r["name"]).name: {
                "patient": r["patient"],
                "num_clusters": n,
                "num_predictions": len(r["pred_scores"]),
                "num_predictions_at_threshold": int((r["pred_scores"] >= self.score_threshold).sum()),
                "max_score": json_number(r["pred_scores"].max()) if len(r["pred_scores"]) else None,
            }
            for r, n in zip(records, n_gt)
        }
        payload = {
            **report,
            "trivial_baseline": baseline,
            "num_images": len(records),
            "num_patients": len(patients),
            "num_clusters": int(sum(n_gt)),
            "num_normal_images": int(sum(n == 0 for n in n_gt)),
            "num_predictions": int(sum(len(r["pred_scores"]) for r in records)),
            "num_cases": len(records),
            "cases": cases,
            "settings": {
                "criterion": self.criterion_spec,
                "fppi_points": self.fppi_points,
                "aufc_ranges": [list(r) for r in self.aufc_ranges],
                "iou_thresholds": self.iou_thresholds,
                "score_threshold": self.score_threshold,
                "n_resamples": self.n_resamples,
                "level": self.level,
                "seed": self.seed,
            },
            **self.extra,
        }
        write_json_atomic(self.path, payload)
        engine.logger.info(summary_table(payload["metrics"], len(records), self.path))
        if baseline is not None:
            key = self._names()[0]
            engine.logger.info(
                f"{key} {report['metrics'][key]} (trivial brightest-region detector {baseline['metrics'][key]})"
            )


# ---- inference output -------------------------------------------------------------------------------------------


def _overlay(image: Any, boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)``: the grey ``(C, W, H)`` / ``(W, H)`` image as displayed, boxes >= threshold in red."""
    from PIL import Image, ImageDraw

    x = _numpy(image)
    x = x[0] if x.ndim == 3 else x
    grey = x.T  # (W, H) -> rows x columns
    low, high = float(np.min(grey)), float(np.max(grey))
    grey = ((grey - low) / max(high - low, 1e-12) * 255).round().astype(np.uint8)
    picture = Image.fromarray(np.ascontiguousarray(grey)).convert("RGB")
    draw = ImageDraw.Draw(picture)
    width = max(1, round(min(grey.shape) / 400))
    for box, score in zip(boxes, scores):
        if score < threshold:
            continue
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=(255, 0, 0), width=width)
        draw.text((x1, max(0.0, y1 - 11)), f"{score:.2f}", fill=(255, 255, 0))
    return np.asarray(picture)


class DetectionWriter:
    """Inference handler writing each image's detections and, at the end of the run, one CSV.

    Per input image (``<stem>`` = its file name without extensions):

    - ``<stem>.json``: MONAI Label's detection layout (the lung_nodule_ct_detection saver's record)
      ``{"image": <file>, "box_mode": "xyxy", "box": [[x1, y1, x2, y2], ...], "label": [...], "score": [...]}``;
    - ``<stem>_overlay.png``: the grey image as displayed (rows x columns) with the boxes scoring at least
      ``draw_threshold`` in red, their score above them.

    ``detections.csv`` (``image,x1,y1,x2,y2,label,score``, one row per box) is written once, at the end of the run.
    Every file is written through a temporary file and a rename. Boxes are written as the evaluator outputs them:
    in the file's pixels when its post-processing maps them back (``BoxesToOriginald``), and x is then the file's
    column. For the overlay to match such boxes, give ``image_loader`` (e.g. ``common.transforms.load_mammogram``),
    which reads the file into ``(C, W, H)`` pixels; without it the output's own image (the network input) is drawn.

    It does not gather across ranks: run inference in one process (in a process group every rank would write its
    own ``detections.csv`` over the others').

    Args:
        output_dir: output folder.
        draw_threshold: smallest score drawn on the overlay (every box goes to the JSON and CSV).
        csv_filename: name of the run's CSV.
        image_loader: reads an image file for the overlay (None: the output's image).
        overlay: write the overlay pictures.
        image_key: image key of the outputs (its meta ``filename_or_obj`` names the files).
        pred_box_key: predicted box key.
        pred_label_key: predicted label key.
        pred_score_key: predicted score key.
    """

    def __init__(
        self,
        output_dir: str | Path,
        draw_threshold: float = 0.5,
        csv_filename: str = "detections.csv",
        image_loader: Callable[[str], Any] | None = None,
        overlay: bool = True,
        image_key: str = "image",
        pred_box_key: str = "pred_box",
        pred_label_key: str = "pred_label",
        pred_score_key: str = "pred_score",
    ) -> None:
        self.output_dir = Path(output_dir)
        self.draw_threshold = float(draw_threshold)
        self.csv_path = self.output_dir / csv_filename
        self.image_loader = image_loader
        self.overlay = bool(overlay)
        self.image_key = image_key
        self.pred_box_key, self.pred_label_key, self.pred_score_key = pred_box_key, pred_label_key, pred_score_key
        self.rows: list[list[Any]] = []
        self._count = 0

    def attach(self, engine: Any) -> None:
        """Write at every iteration of ``engine`` and the CSV when it completes."""
        engine.add_event_handler(Events.STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.write_csv)

    def _reset(self, engine: Any = None) -> None:
        self.rows, self._count = [], 0

    def write_csv(self, engine: Any = None) -> Path:
        """Write ``detections.csv`` with every row so far (the header alone when nothing was detected)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["image", "x1", "y1", "x2", "y2", "label", "score"])
        writer.writerows(self.rows)
        return write_text_atomic(self.csv_path, buffer.getvalue())

    def __call__(self, engine: Any) -> None:
        """Write the JSON and overlay of every image of the iteration, and keep its CSV rows."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for item, batch_item in _iteration_items(engine):
            name = _image_name(item, batch_item, self.image_key, f"image_{self._count}")
            self._count += 1
            boxes = _boxes(item.get(self.pred_box_key))
            labels = _vector(item.get(self.pred_label_key), np.int64)
            scores = _vector(item.get(self.pred_score_key))
            if not len(boxes) == len(labels) == len(scores):
                raise ValueError(
                    f"{name}: {len(boxes)} boxes, {len(labels)} labels and {len(scores)} scores; expected one of each "
                    f"per detection ({self.pred_box_key}, {self.pred_label_key}, {self.pred_score_key})"
                )
            record = {
                "image": name,
                "box_mode": "xyxy",
                "box": boxes.tolist(),
                "label": labels.tolist(),
                "score": scores.tolist(),
            }
            stem = _stem(name)
            write_json_atomic(self.output_dir / f"{stem}.json", record)
            self.rows += [[name, *box.tolist(), int(lab), float(s)] for box, lab, s in zip(boxes, labels, scores)]
            if self.overlay:
                self._write_overlay(stem, name, item.get(self.image_key, batch_item.get(self.image_key)), boxes, scores)

    def _write_overlay(self, stem: str, name: str, image: Any, boxes: np.ndarray, scores: np.ndarray) -> None:
        from PIL import Image

        if self.image_loader is not None and Path(name).is_file():
            image = self.image_loader(name)
        if image is None:
            return
        picture = _overlay(image, boxes, scores, self.draw_threshold)
        path = self.output_dir / f"{stem}_overlay.png"
        tmp = self.output_dir / f".{stem}_overlay.png.tmp"
        Image.fromarray(picture).save(tmp, format="PNG")
        tmp.replace(path)
