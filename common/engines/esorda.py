"""ESORDA training and evaluation: FCOS with adversarial domain adaptation, the MIDOG report, whole-slide inference.

- :class:`ESORDATrainer`: a :class:`~common.engines.DetectionTrainer` whose iteration puts a labelled source batch
  and an unlabelled target batch through the network in one forward (a distributed wrapper allows one forward per
  step), takes FCOS's losses on the source images and, with a :class:`~common.networks.DomainAdaptationHead`, the
  DAH losses of both domains behind the gradient reversal layer.
- :class:`F1ThresholdPicker`: an evaluator handler that picks the score threshold of best F1 (MIDOG's centre
  distance criterion) on the source validation split; :class:`MIDOGReport` reports F1 / precision / recall at that
  threshold on the target scanner, AP (COCO's IoU 0.5:0.95), AP for small objects (area < 32^2) and AP50.
- :func:`detect_whole_slide`: detection over a TIFF of any size, read tile by tile
  (:class:`~common.data.TiffRegionReader`), so that peak memory is that of a tile, boxes merged across tiles by NMS,
  a progress bar on a terminal only.
- :func:`load_sr_generator`: the optional SRM stage's generator, the microscopy SR bundle's trained RRDB network,
  which :class:`~common.transforms.SuperResolutiond` runs on every image.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.engines.utils import IterationEvents
from monai.utils import min_version, optional_import

from ..data.midog import TiffRegionReader
from ..metrics.detection import best_f1_threshold, coco_map, hit_criterion
from ..networks.fcos import TileMerger
from ..networks.rrdb import RRDBGenerator
from .detection import (
    DetectionReport,
    DetectionTrainer,
    _autocast,
    _boxes,
    _items,
    _output_items,
    _plain,
    _stem,
    _vector,
)
from .metrics_report import write_json_atomic, write_text_atomic
from .training import load_checkpoint, read_training_plan

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "ESORDATrainer",
    "F1ThresholdPicker",
    "MIDOGReport",
    "detect_whole_slide",
    "detect_whole_slides",
    "esorda_optimizer",
    "load_sr_generator",
]

COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in np.round(np.arange(0.5, 0.96, 0.05), 2))
"""COCO's IoU thresholds 0.50:0.05:0.95 of AP."""


def esorda_optimizer(
    networks: Sequence[torch.nn.Module | None], lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 1e-4,
    optimizer: str = "SGD",
) -> torch.optim.Optimizer:  # fmt: skip
    """One optimizer over the detector and the DAH discriminators (the GRL makes one step adversarial).

    Args:
        networks: the networks whose trainable parameters are optimised (None entries are skipped).
        lr: learning rate (FCOS: 0.01 at batch 16 with SGD).
        momentum: SGD momentum.
        weight_decay: weight decay.
        optimizer: ``"SGD"`` or ``"AdamW"``.

    Raises:
        ValueError: an unknown optimizer.
    """
    params = [p for n in networks if n is not None for p in n.parameters() if p.requires_grad]
    if optimizer == "SGD":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if optimizer == "AdamW":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'SGD' or 'AdamW', got '{optimizer}'")


class ESORDATrainer(DetectionTrainer):
    """Source-supervised FCOS training with optional DAH alignment to unlabelled target images.

    Each iteration: the source batch (``{"image", "box", "label"}`` items) and, with ``dah``, the next target batch
    (``{"image"}`` items of ``target_data_loader``, cycled) are run as one batch; the loss is
    ``w_cls * focal + w_box * GIoU + w_ctr * centre-ness BCE`` on the source images plus
    ``dah_weight * (global + centre-aware alignment)`` over both domains (domain 0 source, 1 target). Without
    ``dah`` (the source-only baseline) target images are not used. The output adds ``centerness_loss`` and
    ``alignment_loss`` to :class:`DetectionTrainer`'s.

    Args:
        device: training device.
        max_epochs: epochs.
        train_data_loader: source loader (``no_collation``).
        detector: a :class:`~common.networks.FCOSDetector`.
        optimizer: optimizer of the network's and the DAH's parameters (:func:`esorda_optimizer`).
        lr_scheduler: stepped at the end of every epoch.
        dah: a :class:`~common.networks.DomainAdaptationHead` (possibly DDP-wrapped) or None.
        target_data_loader: unlabelled target loader (``no_collation``); needed with ``dah``.
        dah_weight: weight of the alignment losses.
        centerness_weight: weight of the centre-ness loss.
        **kwargs: :class:`DetectionTrainer`'s other arguments.

    Raises:
        ValueError: ``dah`` without a target loader.
    """

    def __init__(
        self,
        device: str | torch.device,
        max_epochs: int,
        train_data_loader: Iterable,
        detector: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        lr_scheduler: Any = None,
        dah: torch.nn.Module | None = None,
        target_data_loader: Iterable | None = None,
        dah_weight: float = 0.1,
        centerness_weight: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if dah is not None and target_data_loader is None:
            raise ValueError("ESORDATrainer: DAH needs a target_data_loader of unlabelled target images")
        self.dah = dah
        self.target_data_loader = target_data_loader
        self.dah_weight, self.centerness_weight = float(dah_weight), float(centerness_weight)
        self._target_iter: Any = None
        super().__init__(device, max_epochs, train_data_loader, detector, optimizer, lr_scheduler, **kwargs)

    def _next_target(self) -> list[Mapping[str, Any]]:
        if self._target_iter is None:
            self._target_iter = iter(self.target_data_loader)  # type: ignore[arg-type]
        try:
            return _items(next(self._target_iter))
        except StopIteration:
            self._target_iter = iter(self.target_data_loader)  # type: ignore[arg-type]
            return _items(next(self._target_iter))

    def _iteration(self, engine: Any, batchdata: Any) -> dict[str, Any]:
        """One adversarial step (see the class docstring)."""
        items = _items(batchdata)
        device, kwargs = engine.state.device, engine.to_kwargs
        detector = engine.detector
        images = [_plain(i[self.image_key]).to(device, **kwargs) for i in items]
        targets = [
            {
                detector.target_box_key: _plain(i[self.box_key]).float().reshape(-1, 4).to(device),
                detector.target_label_key: _plain(i[self.label_key]).long().reshape(-1).to(device),
            }
            for i in items
        ]
        n_source = len(images)
        if self.dah is not None:
            images = images + [_plain(i[self.image_key]).to(device, **kwargs) for i in self._next_target()]
        engine.state.output = {"image": images[:n_source], "label": targets}
        detector.train()
        if self.dah is not None:
            self.dah.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with _autocast(engine.amp, torch.device(device), engine.amp_kwargs):
            losses = detector(images, targets, return_features=self.dah is not None)
            cls_loss, box_loss = losses[detector.cls_key], losses[detector.box_reg_key]
            ctr_loss = losses[detector.centerness_key]
            loss = self.loss_weights[0] * cls_loss + self.loss_weights[1] * box_loss + self.centerness_weight * ctr_loss
            align = torch.zeros((), device=loss.device)
            if self.dah is not None:
                cls_maps, box_maps = losses["head"]
                domain = torch.tensor([0.0] * n_source + [1.0] * (len(images) - n_source), device=loss.device)
                parts = self.dah(losses["features"], cls_maps, box_maps, domain)
                align = parts["global_alignment"] + parts["centre_alignment"]
                loss = loss + self.dah_weight * align
        engine.state.output.update(
            loss=loss.detach(), classification_loss=cls_loss.detach(), box_regression_loss=box_loss.detach(),
            centerness_loss=ctr_loss.detach(), alignment_loss=align.detach(),
        )  # fmt: skip
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        loss.backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        engine.optimizer.step()
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


class F1ThresholdPicker:
    """Evaluator handler: the score threshold of best F1 over the evaluated images (:attr:`threshold`).

    Run on the source validation split before the test evaluation, it gives the operating point the test F1 is
    reported at, chosen without looking at the test images.

    Args:
        criterion: hit criterion (MIDOG: ``"centre_distance:30"``).
        box_key: gt box key of the outputs.
        pred_box_key: predicted box key.
        pred_score_key: predicted score key.
        default: threshold when no gt box was seen.
    """

    def __init__(
        self, criterion: Any = "centre_distance:30", box_key: str = "box", pred_box_key: str = "pred_box",
        pred_score_key: str = "pred_score", default: float = 0.5,
    ) -> None:  # fmt: skip
        self.criterion = hit_criterion(criterion)
        self.keys = (box_key, pred_box_key, pred_score_key)
        self.default = float(default)
        self.images: list[dict[str, Any]] = []
        self.threshold = self.default
        self.best: dict[str, float] = {}

    def attach(self, engine: Any) -> None:
        """Collect at every iteration and pick the threshold at the end of the epoch."""
        engine.add_event_handler(Events.EPOCH_STARTED, lambda e: self.images.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._pick)

    def _collect(self, engine: Any) -> None:
        box_key, pred_box_key, pred_score_key = self.keys
        for item in _output_items(engine.state.output):
            self.images.append({
                "gt_boxes": _boxes(item.get(box_key)), "pred_boxes": _boxes(item.get(pred_box_key)),
                "pred_scores": _vector(item.get(pred_score_key)),
            })  # fmt: skip

    def _pick(self, engine: Any = None) -> None:
        if not any(len(i["gt_boxes"]) for i in self.images):
            self.threshold = self.default
            return
        self.best = best_f1_threshold(self.images, self.criterion)
        value = self.best.get("threshold")
        self.threshold = self.default if value is None or not np.isfinite(value) else float(value)
        if engine is not None:
            engine.logger.info(f"F1ThresholdPicker: threshold {self.threshold:.4f} (validation F1 {self.best['f1']})")


def _area_filter(image: Mapping[str, Any], max_area: float) -> dict[str, Any]:
    def small(boxes: np.ndarray) -> np.ndarray:
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) < max_area

    keep = small(image["pred_boxes"]) if len(image["pred_boxes"]) else np.zeros(0, bool)
    out = dict(image)
    out["pred_boxes"], out["pred_scores"] = image["pred_boxes"][keep], image["pred_scores"][keep]
    out["gt_boxes"] = image["gt_boxes"][small(image["gt_boxes"])] if len(image["gt_boxes"]) else image["gt_boxes"]
    return out


class MIDOGReport(DetectionReport):
    """:class:`DetectionReport` with MIDOG's and the paper's metrics added to ``metrics``.

    ``precision_at_threshold`` / ``recall_at_threshold`` / ``f1_at_threshold`` are MIDOG's (centre distance
    ``criterion``, at the threshold set from the source validation split, e.g. by :class:`F1ThresholdPicker`);
    ``map`` is AP over ``iou_thresholds`` (default AP50); ``ap`` is COCO's AP over IoU 0.5:0.95 and ``ap_small``
    the same for objects of area below ``small_area`` (COCO: 32^2), both gt and predictions filtered by area (a
    simplification of COCO's area ranges, which ignore rather than drop predictions matched to out-of-range gt).
    ``ap_small`` is null without any small gt box.

    Args:
        small_area: area bound of the small objects (pixels^2).
        **kwargs: :class:`DetectionReport`'s arguments.
    """

    def __init__(self, small_area: float = 32.0**2, **kwargs: Any) -> None:
        kwargs.setdefault("criterion", "centre_distance:30")
        kwargs.setdefault("iou_thresholds", (0.5,))
        super().__init__(**kwargs)
        self.small_area = float(small_area)

    def evaluate(self, images: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The base report's blocks, with ``ap`` and ``ap_small`` added to ``metrics``."""
        report = super().evaluate(images)
        images = [
            {k: np.asarray(v) if k != "patient" else v for k, v in i.items()} for i in images
        ]  # fmt: skip
        ap = coco_map(images, COCO_IOU_THRESHOLDS)
        small = [_area_filter(i, self.small_area) for i in images]
        ap_small = coco_map(small, COCO_IOU_THRESHOLDS) if any(len(i["gt_boxes"]) for i in small) else None
        for name, value in (("ap", ap), ("ap_small", ap_small)):
            report["metrics"][name] = None if value is None or not np.isfinite(value) else round(float(value), 6)
        return report


def detect_whole_slide(
    detector: Any,
    path: str | Path,
    tile_size: int = 512,
    overlap: float = 0.125,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.25, 0.25, 0.25),
    device: str | torch.device = "cpu",
    progress: bool | None = None,
) -> dict[str, Any]:
    """Detect in a TIFF of any size, tile by tile, without loading the whole image.

    Each tile (``tile_size`` with ``overlap``; the last one in a row or column moved inside the image) is read
    with :class:`~common.data.TiffRegionReader`, scaled to ``[0, 1]`` and normalised with ``mean`` / ``std`` (the
    bundle's preprocessing), put in MONAI's ``(C, X, Y)`` layout and detected on; the boxes, shifted to the image,
    are merged by the detector's NMS (per tile at most ``detections_per_img`` boxes; after the merge, all).

    Args:
        detector: an :class:`~common.networks.FCOSDetector` (eval mode is set here).
        path: the TIFF.
        tile_size: tile side in pixels.
        overlap: tile overlap fraction.
        mean: per-channel mean of the normalisation (after scaling to [0, 1]).
        std: per-channel standard deviation.
        device: network device.
        progress: show a progress bar (default: only when stderr is a terminal).

    Returns:
        ``{"image", "box" (N, 4) in the file's pixels, "label", "score", "seconds", "megapixels", "tiles"}``.
    """
    progress = sys.stderr.isatty() if progress is None else bool(progress)
    start = time.perf_counter()
    detector.eval()
    detector.set_tiling(tile_size, overlap)
    m = torch.tensor(list(mean), dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32).view(3, 1, 1)
    with TiffRegionReader(path) as reader:
        height, width = reader.shape
        origins = detector.tile_origins((width, height))
        merger = TileMerger(detector, max_detections=1 << 30)  # a slide keeps every merged box
        iterator: Any = origins
        if progress:
            from tqdm import tqdm

            iterator = tqdm(origins, desc=f"{Path(path).name} tiles", leave=False)
        with torch.no_grad():
            for x, y in iterator:
                tile = reader.read(y, x, tile_size, tile_size)
                image = (torch.from_numpy(np.ascontiguousarray(tile.transpose(2, 1, 0))).float() / 255.0 - m) / s
                merger.add(detector.detect_batch([image.to(device)])[0], (x, y))
    found = merger.result()
    return {
        "image": str(path),
        "box": found[detector.target_box_key].numpy(),
        "label": found[detector.target_label_key].numpy(),
        "score": found[detector.pred_score_key].numpy(),
        "seconds": time.perf_counter() - start,
        "megapixels": height * width / 1e6,
        "tiles": len(origins),
    }


def detect_whole_slides(
    detector: Any,
    datalist: Sequence[Mapping[str, Any]],
    output_dir: str | Path,
    tile_size: int = 512,
    overlap: float = 0.125,
    device: str | torch.device = "cpu",
    progress: bool | None = None,
    image_key: str = "image",
) -> list[Path]:
    """:func:`detect_whole_slide` over a datalist, writing what :class:`~common.engines.DetectionWriter` writes
    except the overlay: ``<stem>.json`` per image (MONAI Label's detection layout) and one ``detections.csv``.

    Returns:
        The written files.
    """  # noqa: D205
    out = Path(output_dir)
    written, rows = [], ["image,x1,y1,x2,y2,label,score"]
    for item in datalist:
        found = detect_whole_slide(detector, item[image_key], tile_size, overlap, device=device, progress=progress)
        record = {
            "image": found["image"], "box_mode": "xyxy", "box": found["box"].tolist(),
            "label": found["label"].tolist(), "score": found["score"].tolist(),
        }  # fmt: skip
        written.append(write_json_atomic(out / f"{_stem(found['image'])}.json", record))
        for box, label, score in zip(found["box"], found["label"], found["score"]):
            rows.append(",".join([found["image"], *(f"{v:g}" for v in box), str(int(label)), f"{float(score):g}"]))
    written.append(write_text_atomic(out / "detections.csv", "\n".join(rows) + "\n"))
    return written


def load_sr_generator(bundle_root: str | Path) -> torch.nn.Module:
    """The microscopy SR bundle's trained generator (eval mode, CPU) from ``<bundle_root>/models``.

    Rebuilt from that bundle's ``models/training_plan.json`` (its network arguments) and loaded from its
    ``models/model.pt``: the SRM stage of ESORDA (:class:`~common.transforms.SuperResolutiond`).

    Args:
        bundle_root: the microscopy_super_resolution bundle root holding ``models/``.

    Returns:
        The :class:`~common.networks.RRDBGenerator` with the trained weights.

    Raises:
        FileNotFoundError: no ``model.pt`` or ``training_plan.json`` there (naming the path and how to make them).
    """
    models = Path(bundle_root) / "models"
    plan = read_training_plan(models)
    if plan is None or not (models / "model.pt").is_file():
        raise FileNotFoundError(
            f"{models}: SRM needs the microscopy_super_resolution bundle's trained models/model.pt and "
            "training_plan.json; train that bundle first (docs/README.md, SRM) or run without SRM"
        )
    args = {k: v for k, v in plan.get("network", {}).items() if not k.startswith("_")}
    generator = RRDBGenerator(**args)
    generator.load_state_dict(load_checkpoint(models / "model.pt"))
    return generator.eval()
