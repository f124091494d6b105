"""Detection metrics for 2D boxes: FROC, AUFC, precision/recall/F1, AP, COCO-style mAP and a patient bootstrap.

Conventions:

- boxes are ``(N, 4)`` arrays ``[x1, y1, x2, y2]`` in pixels (MONAI's ``"xyxy"`` mode), read as continuous
  coordinates: the area is ``(x2 - x1) * (y2 - y1)`` (no ``+ 1``); degenerate boxes are allowed and have IoU 0;
- an "image" is a mapping ``{"pred_boxes", "pred_scores", "gt_boxes"}``, optionally with ``"patient"`` (the
  bootstrap's resampling unit) and ``"pred_labels"`` / ``"gt_labels"`` (then a prediction only hits a gt of its
  class; the ``label`` arguments restrict a metric to one class);
- predictions are matched greedily in descending score order, each gt at most once (:func:`match_detections`).
  A prediction's match depends only on higher-scored predictions, so matching once and keeping ``score >= t`` gives
  the same TP/FP labels as matching the kept predictions again: every curve below comes from one matching, with
  one operating point per distinct score (tied predictions enter together).

Malformed input (wrong shape, NaN/inf, ``x2 < x1``, mismatched lengths, missing keys) raises ``ValueError`` naming
the argument, image and row. Inputs may be numpy arrays, lists or torch tensors (torch itself is not imported).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["COCO_IOU_THRESHOLDS", "BootstrapComparison", "BootstrapResult", "CentreDistanceCriterion", "FROCCurve",
           "IoUCriterion", "aufc", "average_precision", "best_f1_threshold", "box_iou", "coco_map",
           "compare_models_bootstrap", "detection_counts_at_threshold", "froc_curve", "hit_criterion",
           "match_detections", "patient_bootstrap", "precision_recall_f1", "sensitivity_at_fppi"]  # fmt: skip

COCO_IOU_THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.5, 0.96, 0.05), 2))
"""COCO's IoU thresholds 0.50:0.05:0.95 (rounded, so that 0.55 is the double nearest 0.55)."""

_IMAGE_KEYS = ("pred_boxes", "pred_scores", "gt_boxes")
Images = Sequence[Mapping[str, Any]]


def _array(x: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, possibly on a GPU
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} is not a numeric array: {error}") from error


def _check_boxes(boxes: Any, name: str) -> np.ndarray:
    b = _array(boxes, name)
    if b.shape in ((0,), (0, 4)):  # no boxes: [] or an empty (0, 4) array
        return b.reshape(0, 4)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as [x1, y1, x2, y2], got shape {b.shape}")
    bad = ~np.isfinite(b).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{name} row {row} is not finite (NaN or inf): {b[row].tolist()}")
    for lo, hi, axis in ((0, 2, "x"), (1, 3, "y")):
        bad = b[:, hi] < b[:, lo]
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{name} row {row} has {axis}2 < {axis}1: {b[row].tolist()} (expected [x1, y1, x2, y2])")
    return b


def _check_vector(values: Any, n: int, name: str, numeric: bool = True) -> np.ndarray:
    v = _array(values, name, np.float64 if numeric else None)
    if v.ndim != 1 or len(v) != n:
        raise ValueError(f"{name} must have shape ({n},), one value per box, got shape {v.shape}")
    if numeric and not np.isfinite(v).all():
        raise ValueError(f"{name} row {int(np.argmax(~np.isfinite(v)))} is not finite (NaN or inf)")
    return v


def _check_labels(pred_labels: Any, gt_labels: Any, n_pred: int, n_gt: int, prefix: str = ""):
    if pred_labels is None and gt_labels is None:
        return None, None
    if pred_labels is None or gt_labels is None:
        raise ValueError(f"{prefix or 'match_detections'}: give both pred_labels and gt_labels, or neither")
    pl = _check_vector(pred_labels, n_pred, f"{prefix}pred_labels", numeric=False)
    return pl, _check_vector(gt_labels, n_gt, f"{prefix}gt_labels", numeric=False)


def box_iou(a: Any, b: Any) -> np.ndarray:
    """Intersection over union of every pair of boxes.

    Args:
        a: ``(N, 4)`` boxes ``[x1, y1, x2, y2]``.
        b: ``(M, 4)`` boxes.

    Returns:
        ``(N, M)`` IoU matrix (0 where the union is empty).
    """
    return _iou(_check_boxes(a, "a"), _check_boxes(b, "b"))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = inter.prod(axis=-1)
    area_a, area_b = ((x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1]) for x in (a, b))
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


class _Criterion:
    """Shared interface of the hit criteria; subclasses define ``_quality`` and ``_hits``."""

    def quality(self, pred: Any, gt: Any) -> np.ndarray:
        """Matching preference of each (prediction, gt) pair, higher is better: IoU, or minus the centre distance.

        Args:
            pred: ``(N, 4)`` predicted boxes.
            gt: ``(M, 4)`` ground-truth boxes.

        Returns:
            ``(N, M)`` float matrix.
        """
        return self._quality(_check_boxes(pred, "pred"), _check_boxes(gt, "gt"))

    def matrix(self, pred: Any, gt: Any) -> np.ndarray:
        """Which (prediction, gt) pairs are hits.

        Args:
            pred: ``(N, 4)`` predicted boxes.
            gt: ``(M, 4)`` ground-truth boxes.

        Returns:
            ``(N, M)`` bool matrix.
        """
        return self._hits(self.quality(pred, gt))


@dataclass(frozen=True)
class IoUCriterion(_Criterion):
    """A prediction hits a gt box when their IoU is at least ``threshold``.

    Args:
        threshold: IoU threshold in ``(0, 1]`` (at 0 disjoint boxes would hit).
    """

    threshold: float

    def __post_init__(self):
        object.__setattr__(self, "threshold", float(self.threshold))  # numpy or int thresholds compare equal
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"IoU threshold must be in (0, 1], got {self.threshold}")

    def _quality(self, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
        return _iou(pred, gt)

    def _hits(self, quality: np.ndarray) -> np.ndarray:
        return quality >= self.threshold


@dataclass(frozen=True)
class CentreDistanceCriterion(_Criterion):
    """A prediction hits a gt box when their centres are at most ``max_distance`` pixels apart (e.g. mitoses).

    Args:
        max_distance: largest Euclidean distance between the box centres, in pixels (>= 0).
    """

    max_distance: float

    def __post_init__(self):
        object.__setattr__(self, "max_distance", float(self.max_distance))
        if not self.max_distance >= 0.0:  # also rejects NaN
            raise ValueError(f"max_distance must be >= 0 pixels, got {self.max_distance}")

    def _quality(self, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
        p, g = (pred[:, :2] + pred[:, 2:]) / 2, (gt[:, :2] + gt[:, 2:]) / 2
        return -np.linalg.norm(p[:, None, :] - g[None, :, :], axis=-1)

    def _hits(self, quality: np.ndarray) -> np.ndarray:
        return -quality <= self.max_distance


CriterionSpec = _Criterion | str | Mapping[str, float]


def hit_criterion(spec: CriterionSpec) -> IoUCriterion | CentreDistanceCriterion:
    """Build a hit criterion from a config value.

    Args:
        spec: ``"iou:0.1"``, ``"centre_distance:30"`` (``center_distance`` also accepted), the same as a one-item
            dict (``{"iou": 0.1}``, ``{"centre_distance": 30}``), or a criterion (returned unchanged).

    Returns:
        An :class:`IoUCriterion` or a :class:`CentreDistanceCriterion`.
    """
    if isinstance(spec, _Criterion):
        return spec
    if isinstance(spec, str) and ":" in spec:
        kind, value = spec.split(":", 1)
    elif isinstance(spec, Mapping) and len(spec) == 1:
        ((kind, value),) = spec.items()
    else:
        raise ValueError(f"hit criterion must look like 'iou:0.5' or {{'centre_distance': 30}}, got {spec!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"hit criterion {spec!r}: value {value!r} is not a number") from None
    kind = str(kind).strip().lower()
    if kind == "iou":
        return IoUCriterion(value)
    if kind in ("centre_distance", "center_distance"):
        return CentreDistanceCriterion(value)
    raise ValueError(f"hit criterion {spec!r}: unknown kind '{kind}', expected 'iou' or 'centre_distance'")


def _greedy(pb, ps, gb, criterion: _Criterion, pl=None, gl=None) -> np.ndarray:
    is_tp = np.zeros(len(pb), dtype=bool)
    if len(pb) == 0 or len(gb) == 0:
        return is_tp  # an image without gt: every prediction is a false positive
    quality = criterion._quality(pb, gb)
    hit = criterion._hits(quality)
    if pl is not None:
        hit &= pl[:, None] == gl[None, :]
    free = np.ones(len(gb), dtype=bool)
    for p in np.argsort(-ps, kind="stable"):  # ties keep input order
        candidates = hit[p] & free
        if candidates.any():
            g = int(np.argmax(np.where(candidates, quality[p], -np.inf)))
            free[g], is_tp[p] = False, True
    return is_tp


def match_detections(
    pred_boxes: Any,
    pred_scores: Any,
    gt_boxes: Any,
    criterion: CriterionSpec,
    pred_labels: Any = None,
    gt_labels: Any = None,
) -> tuple[np.ndarray, int]:
    """Greedy matching of one image's predictions to its gt boxes.

    In descending score order (ties in input order), each prediction takes the unmatched gt of best quality
    (highest IoU, or nearest centre) among those it hits.

    Args:
        pred_boxes: ``(N, 4)`` predicted boxes.
        pred_scores: ``(N,)`` confidence scores.
        gt_boxes: ``(M, 4)`` ground-truth boxes.
        criterion: a criterion or a spec for :func:`hit_criterion`.
        pred_labels: optional ``(N,)`` classes; with ``gt_labels``, a prediction only hits a gt of its class.
        gt_labels: optional ``(M,)`` classes.

    Returns:
        ``(is_tp, n_gt)``: ``(N,)`` bool, True for the predictions matched to a gt, and ``M``.
    """
    criterion = hit_criterion(criterion)
    pb, gb = _check_boxes(pred_boxes, "pred_boxes"), _check_boxes(gt_boxes, "gt_boxes")
    ps = _check_vector(pred_scores, len(pb), "pred_scores")
    pl, gl = _check_labels(pred_labels, gt_labels, len(pb), len(gb))
    return _greedy(pb, ps, gb, criterion, pl, gl), len(gb)


def _check_images(images: Any) -> None:
    if isinstance(images, Mapping | str) or not isinstance(images, Sequence) or len(images) == 0:
        raise ValueError("images must be a non-empty sequence of per-image dicts {pred_boxes, pred_scores, gt_boxes}")
    for i, image in enumerate(images):
        if not isinstance(image, Mapping) or any(k not in image for k in _IMAGE_KEYS):
            raise ValueError(f"images[{i}] must be a dict with keys {list(_IMAGE_KEYS)}, got {image!r:.200}")


def _match_images(images: Images, criterion: CriterionSpec, label: Any = None):
    """Validate and match every image: (all scores, all is_tp, total gt, number of images)."""
    criterion = hit_criterion(criterion)
    _check_images(images)
    scores, tps, n_gt = [], [], 0
    for i, image in enumerate(images):
        name = f"images[{i}]"
        pb = _check_boxes(image["pred_boxes"], f"{name}['pred_boxes']")
        ps = _check_vector(image["pred_scores"], len(pb), f"{name}['pred_scores']")
        gb = _check_boxes(image["gt_boxes"], f"{name}['gt_boxes']")
        pl, gl = _check_labels(image.get("pred_labels"), image.get("gt_labels"), len(pb), len(gb), name)
        if label is not None:
            if pl is None:
                raise ValueError(f"label={label!r} needs 'pred_labels' and 'gt_labels'; {name} has neither")
            keep_p, keep_g = pl == label, gl == label
            pb, ps, pl, gb, gl = pb[keep_p], ps[keep_p], pl[keep_p], gb[keep_g], gl[keep_g]
        tps.append(_greedy(pb, ps, gb, criterion, pl, gl))
        scores.append(ps)
        n_gt += len(gb)
    return np.concatenate(scores), np.concatenate(tps), n_gt, len(images)


def _operating_points(images: Images, criterion: CriterionSpec, label: Any):
    """(distinct thresholds, descending; TP count; FP count; n_gt; n_images) keeping ``score >= threshold``."""
    scores, is_tp, n_gt, n_images = _match_images(images, criterion, label)
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], is_tp[order]
    last = np.r_[s[1:] != s[:-1], True][: len(s)]  # last prediction of each run of tied scores
    return s[last], np.cumsum(t)[last], np.cumsum(~t)[last], n_gt, n_images


@dataclass(frozen=True)
class FROCCurve:
    """Operating points of a FROC curve, by increasing FPpI (decreasing threshold).

    Attributes:
        thresholds: score threshold of each point (the predictions with ``score >= threshold`` are kept).
        sensitivity: lesion-level sensitivity, matched gt / all gt (NaN when there is no gt at all).
        fppi: mean false positives per image, FP / number of images (normal images included).
        n_gt: number of gt boxes.
        n_images: number of images.
    """

    thresholds: np.ndarray
    sensitivity: np.ndarray
    fppi: np.ndarray
    n_gt: int
    n_images: int


def froc_curve(images: Images, criterion: CriterionSpec, label: Any = None) -> FROCCurve:
    """Free-response ROC over all images, one point per distinct prediction score.

    Args:
        images: per-image dicts ``{"pred_boxes", "pred_scores", "gt_boxes"}`` (see the module docstring).
        criterion: hit criterion or spec (:func:`hit_criterion`).
        label: if given, only the predictions and gt of this class.

    Returns:
        A :class:`FROCCurve` (with empty arrays when there is no prediction).
    """
    thresholds, tp, fp, n_gt, n_images = _operating_points(images, criterion, label)
    sensitivity = tp / n_gt if n_gt else np.full(len(tp), np.nan)
    return FROCCurve(thresholds, sensitivity.astype(np.float64), fp / n_images, n_gt, n_images)


def sensitivity_at_fppi(froc: FROCCurve, fppi: float | Sequence[float]) -> float | np.ndarray:
    """Highest sensitivity reached at a mean FPpI no larger than ``fppi``.

    Args:
        froc: from :func:`froc_curve`.
        fppi: one FPpI budget (>= 0) or several.

    Returns:
        A float, or an array for several budgets; 0 where no operating point is within the budget, NaN without gt.
    """
    budget = np.asarray(fppi, dtype=np.float64)
    if not (budget >= 0).all():
        raise ValueError(f"fppi must be >= 0, got {fppi}")
    flat = budget.reshape(-1)
    if froc.n_gt == 0:
        result = np.full(flat.shape, np.nan)
    else:
        within = froc.fppi[None, :] <= flat[:, None]
        result = np.where(within, froc.sensitivity[None, :], 0.0).max(axis=1, initial=0.0)
    return float(result[0]) if budget.ndim == 0 else result.reshape(budget.shape)


def aufc(froc: FROCCurve, fppi_range: tuple[float, float] = (0.0, 1.0)) -> float:
    """Area under the FROC curve over an FPpI range, divided by the range's length (a perfect detector gives 1).

    Interpolation: a step function, ``s(f) = sensitivity_at_fppi(froc, f)``: an operating point's sensitivity is
    held until the next point (linear interpolation would credit operating points no threshold reaches), it is 0
    before the first point and held after the last.

    Args:
        froc: from :func:`froc_curve`.
        fppi_range: ``(low, high)`` with ``0 <= low < high``.

    Returns:
        Normalised area in [0, 1] (NaN without gt).
    """
    low, high = (float(v) for v in fppi_range)
    if not 0.0 <= low < high:
        raise ValueError(f"fppi_range must satisfy 0 <= low < high, got {fppi_range}")
    edges = np.unique(np.r_[low, froc.fppi[(froc.fppi > low) & (froc.fppi < high)], high])
    return float(np.sum(sensitivity_at_fppi(froc, edges[:-1]) * np.diff(edges)) / (high - low))


def _prf(tp: np.ndarray, fp: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # a zero denominator gives 0 (scikit-learn's zero_division=0): no prediction scores F1 = 0
    tp, fp = np.asarray(tp, dtype=np.float64), np.asarray(fp, dtype=np.float64)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    recall = tp / n_gt if n_gt else np.zeros_like(tp)
    f1 = np.divide(2 * tp, tp + fp + n_gt, out=np.zeros_like(tp), where=tp + fp + n_gt > 0)  # 2TP / (2TP+FP+FN)
    return precision, recall, f1


def detection_counts_at_threshold(
    images: Images, criterion: CriterionSpec, threshold: float, label: Any = None
) -> dict[str, int]:
    """TP / FP / FN counts when keeping the predictions with ``score >= threshold``.

    Args:
        images: per-image dicts (see :func:`froc_curve`).
        criterion: hit criterion or spec.
        threshold: score threshold.
        label: optional class (see :func:`froc_curve`).

    Returns:
        ``{"tp", "fp", "fn", "n_gt", "n_images"}``.
    """
    scores, is_tp, n_gt, n_images = _match_images(images, criterion, label)
    kept = scores >= threshold
    tp, fp = int((is_tp & kept).sum()), int((~is_tp & kept).sum())
    return {"tp": tp, "fp": fp, "fn": n_gt - tp, "n_gt": n_gt, "n_images": n_images}


def precision_recall_f1(
    images: Images, criterion: CriterionSpec, threshold: float, label: Any = None
) -> dict[str, float]:
    """Detection precision, recall (lesion sensitivity) and F1 at a score threshold.

    Args:
        images: per-image dicts (see :func:`froc_curve`).
        criterion: hit criterion or spec.
        threshold: keep the predictions with ``score >= threshold``.
        label: optional class (see :func:`froc_curve`).

    Returns:
        ``{"precision", "recall", "f1"}``; a zero denominator gives 0.
    """
    counts = detection_counts_at_threshold(images, criterion, threshold, label)
    values = _prf(counts["tp"], counts["fp"], counts["n_gt"])
    return dict(zip(("precision", "recall", "f1"), (float(v) for v in values)))


def best_f1_threshold(images: Images, criterion: CriterionSpec, label: Any = None) -> dict[str, float]:
    """The score threshold maximising F1 (choose it on validation data, then apply it to the test set).

    Args:
        images: per-image dicts (see :func:`froc_curve`).
        criterion: hit criterion or spec.
        label: optional class (see :func:`froc_curve`).

    Returns:
        ``{"threshold", "precision", "recall", "f1"}``; the threshold is a prediction score (among ties in F1 the
        highest, i.e. the fewest detections), ``inf`` when there is no prediction.
    """
    thresholds, tp, fp, n_gt, _ = _operating_points(images, criterion, label)
    if len(thresholds) == 0:
        return {"threshold": float("inf"), "precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision, recall, f1 = _prf(tp, fp, n_gt)
    best = int(np.argmax(f1))  # the first maximum has the highest threshold
    values = (thresholds, precision, recall, f1)
    return {k: float(v[best]) for k, v in zip(("threshold", "precision", "recall", "f1"), values)}


def average_precision(
    images: Images, criterion: CriterionSpec, recall_points: int | None = 101, label: Any = None
) -> float:
    """Average precision at one hit criterion, from the precision envelope (best precision at recall >= r).

    Args:
        images: per-image dicts (see :func:`froc_curve`).
        criterion: hit criterion or spec.
        recall_points: COCO's 101-point interpolation (mean envelope precision at recall 0, 0.01, ..., 1, counting
            0 beyond the highest recall reached); ``None`` for VOC 2010's all-point area under the envelope.
        label: optional class (see :func:`froc_curve`).

    Returns:
        AP in [0, 1]; NaN without gt (COCO skips such classes), 0 without predictions.
    """
    if recall_points is not None and recall_points < 2:
        raise ValueError(f"recall_points must be >= 2 or None, got {recall_points}")
    _, tp, fp, n_gt, _ = _operating_points(images, criterion, label)
    if n_gt == 0:
        return float("nan")
    if len(tp) == 0:
        return 0.0
    recall, precision = tp / n_gt, tp / (tp + fp)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    if recall_points is None:
        return float(np.sum(np.diff(np.r_[0.0, recall]) * envelope))
    first = np.searchsorted(recall, np.linspace(0.0, 1.0, recall_points), side="left")  # first point reaching r
    return float(np.where(first < len(recall), envelope[np.minimum(first, len(recall) - 1)], 0.0).mean())


def coco_map(
    images: Images,
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    labels: Sequence[Any] | None = None,
    recall_points: int | None = 101,
) -> float:
    """Mean :func:`average_precision` over IoU thresholds (and over classes, when ``labels`` is given).

    The calcification-cluster paper selects models on ``iou_thresholds=np.arange(0.1, 0.51, 0.05)``.

    Args:
        images: per-image dicts (see :func:`froc_curve`).
        iou_thresholds: IoU thresholds; COCO's 0.50:0.05:0.95 by default.
        labels: classes to average over (class-wise AP, as COCO); ``None`` pools all boxes.
        recall_points: see :func:`average_precision`.

    Returns:
        mAP, skipping classes without gt; NaN when no class has gt.
    """
    thresholds = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    if len(thresholds) == 0:
        raise ValueError("iou_thresholds must not be empty")
    classes = [None] if labels is None else list(labels)
    aps = [[average_precision(images, IoUCriterion(float(t)), recall_points, c) for t in thresholds] for c in classes]
    per_class = np.mean(aps, axis=1)
    per_class = per_class[np.isfinite(per_class)]
    return float(per_class.mean()) if len(per_class) else float("nan")


@dataclass(frozen=True)
class BootstrapResult:
    """A statistic with its patient-level percentile bootstrap interval.

    Attributes:
        estimate: the statistic on all images.
        ci: ``(low, high)`` percentile interval of the finite resampled values.
        samples: ``(n_resamples,)`` statistic of each resample (NaN kept, e.g. a resample without gt).
    """

    estimate: float
    ci: tuple[float, float]
    samples: np.ndarray


@dataclass(frozen=True)
class BootstrapComparison:
    """Paired patient-level bootstrap of ``statistic(a) - statistic(b)``.

    Attributes:
        difference: the difference on all images.
        mean_difference: mean of the finite resampled differences.
        ci: ``(low, high)`` percentile interval of the resampled differences.
        p_value: one-sided, for H0 ``a <= b``: ``(k + 1) / (n + 1)``, ``k`` of the ``n`` finite differences ``<= 0``.
        samples: ``(n_resamples,)`` resampled differences.
    """

    difference: float
    mean_difference: float
    ci: tuple[float, float]
    p_value: float
    samples: np.ndarray


def _resamples(images: Images, n_resamples: int, seed: int, level: float) -> Iterator[list[int]]:
    _check_images(images)
    if n_resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"need n_resamples >= 1 and 0 < level < 1, got {n_resamples} and {level}")
    groups: dict[Any, list[int]] = {}
    for i, image in enumerate(images):  # object(): an image without "patient" is its own patient
        groups.setdefault(image["patient"] if "patient" in image else object(), []).append(i)
    patients = list(groups.values())
    rng = np.random.default_rng(seed)
    for _ in range(n_resamples):
        yield [i for p in rng.integers(0, len(patients), len(patients)) for i in patients[p]]


def _percentile_ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    return tuple(float(q) for q in np.quantile(finite, [(1 - level) / 2, (1 + level) / 2]))


def patient_bootstrap(
    images: Images, statistic: Callable[[list], float], n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> BootstrapResult:
    """Percentile bootstrap over patients: all images of a drawn patient enter the resample together.

    Args:
        images: per-image dicts; ``"patient"`` groups them (an image without it is its own patient).
        statistic: maps a list of images to a float, e.g. ``lambda ims: aufc(froc_curve(ims, "iou:0.1"))``.
        n_resamples: number of resamples.
        seed: seed of ``numpy.random.default_rng``.
        level: confidence level of the interval.

    Returns:
        A :class:`BootstrapResult`.
    """
    resamples = _resamples(images, n_resamples, seed, level)
    samples = np.array([statistic([images[i] for i in idx]) for idx in resamples], dtype=np.float64)
    return BootstrapResult(float(statistic(list(images))), _percentile_ci(samples, level), samples)


def compare_models_bootstrap(
    images_a: Images,
    images_b: Images,
    statistic: Callable[[list], float],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapComparison:
    """Paired bootstrap of model A against model B: every resample draws the same patients for both models.

    Args:
        images_a: model A's per-image dicts.
        images_b: model B's, aligned by index with ``images_a`` (same image, patient and gt boxes).
        statistic: maps a list of images to a float, higher = better (the p-value's direction).
        n_resamples: number of resamples.
        seed: seed of ``numpy.random.default_rng``.
        level: confidence level of the interval.

    Returns:
        A :class:`BootstrapComparison` of ``statistic(a) - statistic(b)``.
    """
    _check_images(images_a), _check_images(images_b)
    if len(images_a) != len(images_b):
        raise ValueError(f"images_a and images_b must be aligned, got {len(images_a)} and {len(images_b)} images")
    for i, (a, b) in enumerate(zip(images_a, images_b)):
        n_a = len(_check_boxes(a["gt_boxes"], f"images_a[{i}]['gt_boxes']"))
        n_b = len(_check_boxes(b["gt_boxes"], f"images_b[{i}]['gt_boxes']"))
        if a.get("patient") != b.get("patient") or n_a != n_b:
            raise ValueError(f"images_a[{i}] and images_b[{i}] differ in patient or number of gt boxes: not aligned")
    resamples = _resamples(images_a, n_resamples, seed, level)
    diffs = [statistic([images_a[i] for i in idx]) - statistic([images_b[i] for i in idx]) for idx in resamples]
    samples = np.array(diffs, dtype=np.float64)
    finite = samples[np.isfinite(samples)]
    return BootstrapComparison(
        difference=float(statistic(list(images_a)) - statistic(list(images_b))),
        mean_difference=float(finite.mean()) if len(finite) else float("nan"),
        ci=_percentile_ci(samples, level),
        p_value=float((np.sum(finite <= 0) + 1) / (len(finite) + 1)),
        samples=samples,
    )
