"""Tests of common.metrics.detection: hand-built detections whose answers are worked out in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from common.metrics import (
    COCO_IOU_THRESHOLDS,
    BootstrapComparison,
    BootstrapResult,
    CentreDistanceCriterion,
    FROCCurve,
    IoUCriterion,
    aufc,
    average_precision,
    best_f1_threshold,
    box_iou,
    coco_map,
    compare_models_bootstrap,
    detection_counts_at_threshold,
    froc_curve,
    hit_criterion,
    match_detections,
    patient_bootstrap,
    precision_recall_f1,
    sensitivity_at_fppi,
)

IOU50 = IoUCriterion(0.5)


def image(pred_boxes, pred_scores, gt_boxes, **extra):
    return {"pred_boxes": np.array(pred_boxes, float), "pred_scores": np.array(pred_scores, float),
            "gt_boxes": np.array(gt_boxes, float), **extra}  # fmt: skip


def two_images():
    """Two images, 3 gt, 4 predictions.

    Image 0, gt A [0,0,10,10] and B [20,20,30,30]:
      0.9 [0,0,10,10]   IoU 1 with A                   -> TP
      0.6 [50,50,60,60] touches nothing                 -> FP
    Image 1, gt C [0,0,10,10]:
      0.8 [40,40,50,50] touches nothing                 -> FP
      0.7 [1,1,11,11]   IoU 81 / (100+100-81) = 0.681 -> TP at IoU 0.5 (FP from IoU 0.7 up)
    Ranked: 0.9 TP, 0.8 FP, 0.7 TP, 0.6 FP; B is never found.
    """
    return [
        image([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.6], [[0, 0, 10, 10], [20, 20, 30, 30]]),
        image([[40, 40, 50, 50], [1, 1, 11, 11]], [0.8, 0.7], [[0, 0, 10, 10]]),
    ]


def test_box_iou_hand_values():
    a = [[0, 0, 10, 10], [0, 0, 2, 1]]
    b = [[5, 0, 15, 10], [0, 0, 1, 1], [20, 20, 30, 30], [3, 3, 3, 3]]
    # [0,0,10,10] vs [5,0,15,10]: inter 50, union 150 -> 1/3; vs [0,0,1,1]: 1/100; disjoint -> 0; zero-area box -> 0
    # [0,0,2,1] vs [0,0,1,1]: inter 1, union 2 -> 0.5
    expected = [[1 / 3, 0.01, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0]]
    assert box_iou(a, b) == pytest.approx(np.array(expected))
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)
    assert box_iou([], []).shape == (0, 0)


def test_box_iou_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    iou = box_iou(torch.tensor([[0.0, 0.0, 2.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    assert isinstance(iou, np.ndarray) and iou[0, 0] == pytest.approx(0.5)


def test_iou_criterion_threshold_is_inclusive():
    pred, gt = [[0, 0, 2, 1]], [[0, 0, 1, 1]]  # IoU exactly 0.5
    assert IoUCriterion(0.5).matrix(pred, gt).tolist() == [[True]]
    assert IoUCriterion(0.51).matrix(pred, gt).tolist() == [[False]]
    assert IoUCriterion(0.5).quality(pred, gt) == pytest.approx(np.array([[0.5]]))


def test_centre_distance_hits_where_iou_misses():
    # centres (2, 2) and (8, 2): 6 px apart; the boxes are disjoint, so IoU is 0 and no IoU threshold hits
    pred, gt = [[0, 0, 4, 4]], [[6, 0, 10, 4]]
    assert not IoUCriterion(0.1).matrix(pred, gt).any()
    assert CentreDistanceCriterion(6).matrix(pred, gt).tolist() == [[True]]  # <= max_distance hits
    assert CentreDistanceCriterion(5.9).matrix(pred, gt).tolist() == [[False]]
    assert CentreDistanceCriterion(6).quality(pred, gt) == pytest.approx(np.array([[-6.0]]))
    assert match_detections(pred, [0.5], gt, "centre_distance:30")[0].tolist() == [True]
    assert match_detections(pred, [0.5], gt, "iou:0.1")[0].tolist() == [False]
    # mitosis style: 3 candidate centres against 2 gt within 30 px
    images = [
        image([[0, 0, 4, 4], [100, 100, 104, 104], [40, 0, 44, 4]], [0.9, 0.8, 0.7], [[6, 0, 10, 4], [60, 0, 64, 4]])
    ]
    # 0.9 -> gt0 (6 px), 0.8 far -> FP, 0.7 centre (42,2): gt0 is taken, gt1 at (62,2) is 20 px away -> TP
    assert precision_recall_f1(images, {"centre_distance": 30}, 0.0) == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8}
    )


def test_hit_criterion_specs():
    assert hit_criterion("iou:0.1") == IoUCriterion(0.1)
    assert hit_criterion(" IoU : 0.25") == IoUCriterion(0.25)
    assert hit_criterion({"centre_distance": 30}) == CentreDistanceCriterion(30.0) == CentreDistanceCriterion(30)
    assert IoUCriterion(np.float32(0.5)).threshold == 0.5 and type(IoUCriterion(1).threshold) is float
    assert hit_criterion("center_distance:12.5") == CentreDistanceCriterion(12.5)
    criterion = CentreDistanceCriterion(3)
    assert hit_criterion(criterion) is criterion


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("iou", "must look like"),
        ({"iou": 0.1, "centre_distance": 3}, "must look like"),
        (0.5, "must look like"),
        ("iou:abc", "'abc' is not a number"),
        ("dice:0.5", "unknown kind 'dice'"),
        ("iou:0", r"IoU threshold must be in \(0, 1\]"),
        ({"iou": 1.5}, r"IoU threshold must be in \(0, 1\]"),
        ("centre_distance:-1", "max_distance must be >= 0"),
    ],
)
def test_hit_criterion_rejects_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        hit_criterion(spec)


def test_greedy_matching_order_and_quality():
    # one gt, two hits: the higher score wins even though the lower-scored box fits better
    gt = [[0, 0, 10, 10]]
    is_tp, n_gt = match_detections([[1, 1, 11, 11], [0, 0, 10, 10]], [0.9, 0.5], gt, IOU50)
    assert is_tp.tolist() == [True, False] and n_gt == 1
    # p (0.9) hits g1 (IoU 60/140 = 0.43) and g2 (IoU 90/110 = 0.82): it takes the better g2, leaving g1 to q,
    # which only hits g1 (IoU 1; with g2 50/150 = 0.33 < 0.4); taking the first hit g1 would leave q a FP
    gts = [[0, 0, 10, 10], [5, 0, 15, 10]]
    is_tp, _ = match_detections([[0, 0, 10, 10], [4, 0, 14, 10]], [0.8, 0.9], gts, "iou:0.4")
    assert is_tp.tolist() == [True, True]
    # an image without gt: every prediction is a false positive; no predictions: empty result
    assert match_detections([[0, 0, 1, 1]], [0.3], np.zeros((0, 4)), IOU50) == (pytest.approx([False]), 0)
    is_tp, n_gt = match_detections([], [], gt, IOU50)
    assert is_tp.shape == (0,) and n_gt == 1


def test_labels_restrict_hits_to_the_same_class():
    box = [[0, 0, 10, 10]]
    assert match_detections(box, [0.9], box, IOU50, pred_labels=[1], gt_labels=[2])[0].tolist() == [False]
    assert match_detections(box, [0.9], box, IOU50, pred_labels=[2], gt_labels=[2])[0].tolist() == [True]
    images = [
        image(box + [[20, 20, 30, 30]], [0.9, 0.8], box + [[20, 20, 30, 30]], pred_labels=[0, 1], gt_labels=[0, 0])
    ]
    # class 0: gt 2, one TP -> AP over recall points 0..0.5 (51 of 101) at precision 1 = 51/101; class 1: no gt
    assert average_precision(images, IOU50, label=0) == pytest.approx(51 / 101)
    assert np.isnan(average_precision(images, IOU50, label=1))
    assert coco_map(images, [0.5], labels=[0, 1]) == pytest.approx(51 / 101)  # class 1 (no gt) skipped
    with pytest.raises(ValueError, match=r"label=0 needs 'pred_labels' and 'gt_labels'; images\[0\] has neither"):
        froc_curve(two_images(), IOU50, label=0)


def test_froc_points_aufc_and_sensitivity():
    froc = froc_curve(two_images(), IOU50)
    assert isinstance(froc, FROCCurve) and (froc.n_gt, froc.n_images) == (3, 2)
    # keep >= 0.9: 1 TP 0 FP; >= 0.8: 1 TP 1 FP; >= 0.7: 2 TP 1 FP; >= 0.6: 2 TP 2 FP (FPpI = FP / 2 images)
    assert froc.thresholds == pytest.approx([0.9, 0.8, 0.7, 0.6])
    assert froc.fppi == pytest.approx([0.0, 0.5, 0.5, 1.0])
    assert froc.sensitivity == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    # step curve: 1/3 on [0, 0.5), 2/3 on [0.5, 1] -> (0.5 * 1/3 + 0.5 * 2/3) / 1 = 0.5
    assert aufc(froc) == pytest.approx(0.5)
    # over [0, 2] the last point's 2/3 is held: (0.5/3 + 1.5 * 2/3) / 2 = 7/12
    # over [0.25, 0.75]: (0.25 * 1/3 + 0.25 * 2/3) / 0.5 = 0.5
    assert aufc(froc, (0, 2)) == pytest.approx(7 / 12)
    assert aufc(froc, (0.25, 0.75)) == pytest.approx(0.5)
    assert sensitivity_at_fppi(froc, 0.5) == pytest.approx(2 / 3)  # highest at FPpI <= 0.5
    assert sensitivity_at_fppi(froc, [0.0, 0.25, 0.49, 3.0]) == pytest.approx([1 / 3, 1 / 3, 1 / 3, 2 / 3])


def test_froc_normal_images_count_in_fppi_and_zero_before_first_point():
    normal = image([[0, 0, 5, 5]], [0.95], [])  # a normal image whose top-scored prediction is a FP
    froc = froc_curve([*two_images(), normal], IOU50)
    # 0.95: FP 1 -> FPpI 1/3, sens 0; 0.9: (1/3, 1/3); 0.8: (2/3, 1/3); 0.7: (2/3, 2/3); 0.6: (1, 2/3)
    assert froc.fppi == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 1.0])
    assert froc.sensitivity == pytest.approx([0, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert sensitivity_at_fppi(froc, 0.2) == 0.0  # no operating point at FPpI <= 0.2
    # 0 on [0, 1/3), 1/3 on [1/3, 2/3), 2/3 on [2/3, 1]: (1/3 * 1/3 + 1/3 * 2/3) = 1/3
    assert aufc(froc) == pytest.approx(1 / 3)
    perfect = froc_curve([image([[0, 0, 1, 1]], [0.5], [[0, 0, 1, 1]])], IOU50)
    assert aufc(perfect) == pytest.approx(1.0)


def test_froc_ties_and_no_predictions_or_no_gt():
    # tied scores enter together: one operating point with 1 TP and 1 FP
    tied = froc_curve([image([[0, 0, 1, 1], [5, 5, 6, 6]], [0.5, 0.5], [[0, 0, 1, 1]])], IOU50)
    assert tied.thresholds.tolist() == [0.5] and tied.fppi.tolist() == [1.0] and tied.sensitivity.tolist() == [1.0]
    empty = froc_curve([image([], [], [[0, 0, 1, 1]])], IOU50)
    assert len(empty.fppi) == 0 and sensitivity_at_fppi(empty, 1.0) == 0.0 and aufc(empty) == 0.0
    no_gt = froc_curve([image([[0, 0, 1, 1]], [0.5], [])], IOU50)
    assert np.isnan(no_gt.sensitivity).all() and np.isnan(aufc(no_gt))


def test_counts_precision_recall_f1_and_best_threshold():
    images = two_images()
    counts = detection_counts_at_threshold(images, IOU50, 0.7)
    assert counts == {"tp": 2, "fp": 1, "fn": 1, "n_gt": 3, "n_images": 2}
    # >= 0.7: P = 2/3, R = 2/3, F1 = 2*2 / (2*2 + 1 + 1) = 2/3
    assert precision_recall_f1(images, IOU50, 0.7) == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    # >= 0.6: TP 2 FP 2 FN 1 -> F1 = 4/7; >= 0.9: TP 1 FP 0 FN 2 -> F1 = 2/4; >= 0.8: 2/5; above all: 0
    assert precision_recall_f1(images, IOU50, 0.6)["f1"] == pytest.approx(4 / 7)
    assert precision_recall_f1(images, IOU50, 0.9) == pytest.approx({"precision": 1.0, "recall": 1 / 3, "f1": 0.5})
    assert precision_recall_f1(images, IOU50, 0.8)["f1"] == pytest.approx(0.4)
    assert precision_recall_f1(images, IOU50, 0.99) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    best = best_f1_threshold(images, IOU50)
    assert best == pytest.approx({"threshold": 0.7, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    # at IoU 0.7 the 0.7 box is a FP: F1 is 0.5 at 0.9, 0.4 at 0.8, 1/3 at 0.7, 2/7 at 0.6 -> 0.9
    assert best_f1_threshold(images, "iou:0.7")["threshold"] == pytest.approx(0.9)
    assert best_f1_threshold([image([], [], [[0, 0, 1, 1]])], IOU50)["threshold"] == float("inf")


def test_average_precision_hand_values():
    images = two_images()
    # ranked TP FP TP FP: precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3; envelope 1, 2/3, 2/3, 1/2
    # 101 points: r = 0..0.33 (34 points) -> 1; r = 0.34..0.66 (33) -> 2/3; r >= 0.67 (34) never reached -> 0
    assert average_precision(images, IOU50) == pytest.approx((34 + 33 * 2 / 3) / 101)  # 56/101
    # all-point: 1/3 * 1 + 1/3 * 2/3 = 5/9
    assert average_precision(images, IOU50, recall_points=None) == pytest.approx(5 / 9)
    # IoU 0.7: only the 0.9 box is a TP -> 34 points at precision 1
    assert average_precision(images, "iou:0.7") == pytest.approx(34 / 101)
    assert average_precision([image([], [], [[0, 0, 1, 1]])], IOU50) == 0.0
    assert np.isnan(average_precision([image([[0, 0, 1, 1]], [0.5], [])], IOU50))


def test_coco_map_averages_over_iou_thresholds():
    assert COCO_IOU_THRESHOLDS == pytest.approx(np.linspace(0.5, 0.95, 10))
    # the 0.7 box has IoU 0.681: a TP at 0.50, 0.55, 0.60, 0.65 (AP 56/101), a FP at the 6 others (AP 34/101)
    assert coco_map(two_images()) == pytest.approx((4 * 56 + 6 * 34) / 1010)
    # the calcification paper's 0.1:0.05:0.5: the 0.7 box is a TP at all 9 thresholds
    assert coco_map(two_images(), np.arange(0.1, 0.51, 0.05)) == pytest.approx(56 / 101)
    with pytest.raises(ValueError, match="must not be empty"):
        coco_map(two_images(), [])


BAD_IMAGES = [
    ({"pred_boxes": [[0, 0, 1]], "pred_scores": [0.5], "gt_boxes": []},
     r"images\[0\]\['pred_boxes'\] must have shape \(N, 4\)"),
    ({"pred_boxes": [[0, 0, 1, 1], [5, 0, 4, 1]], "pred_scores": [0.5, 0.4], "gt_boxes": []},
     r"images\[0\]\['pred_boxes'\] row 1 has x2 < x1"),
    ({"pred_boxes": [], "pred_scores": [], "gt_boxes": [[0, 0, 1, 1], [0, 0, 1, 1], [0, 3, 1, 2]]},
     r"images\[0\]\['gt_boxes'\] row 2 has y2 < y1"),
    ({"pred_boxes": [[0, 0, 1, 1], [0, np.nan, 1, 1]], "pred_scores": [0.5, 0.4], "gt_boxes": []},
     r"images\[0\]\['pred_boxes'\] row 1 is not finite"),
    ({"pred_boxes": [[0, 0, np.inf, 1]], "pred_scores": [0.5], "gt_boxes": []}, r"row 0 is not finite"),
    ({"pred_boxes": [[0, 0, 1, 1]], "pred_scores": [0.5, 0.4], "gt_boxes": []},
     r"images\[0\]\['pred_scores'\] must have shape \(1,\)"),
    ({"pred_boxes": [[0, 0, 1, 1]], "pred_scores": [[0.5]], "gt_boxes": []}, r"pred_scores'\] must have shape \(1,\)"),
    ({"pred_boxes": [[0, 0, 1, 1]] * 3, "pred_scores": [0.5, 0.4, np.nan], "gt_boxes": []},
     r"images\[0\]\['pred_scores'\] row 2 is not finite"),
    ({"pred_boxes": [[0, 0, 1, 1]], "pred_scores": ["high"], "gt_boxes": []}, r"pred_scores'\] is not a numeric array"),
    ({"pred_boxes": [[0, 0, 1, 1]], "pred_scores": [0.5], "gt_boxes": [], "pred_labels": [1]},
     r"images\[0\]: give both pred_labels and gt_labels"),
    ({"pred_boxes": [[0, 0, 1, 1]], "pred_scores": [0.5], "gt_boxes": [], "pred_labels": [1, 2], "gt_labels": []},
     r"images\[0\]pred_labels must have shape \(1,\)"),
    ({"pred_boxes": [[0, 0, 1, 1]], "pred_scores": [0.5]}, r"images\[0\] must be a dict with keys"),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "match"), BAD_IMAGES)
def test_malformed_images_name_the_argument_and_row(bad, match):
    with pytest.raises(ValueError, match=match):
        froc_curve([bad], IOU50)


def test_malformed_arguments():
    with pytest.raises(ValueError, match=r"^b row 0 has x2 < x1"):
        box_iou([[0, 0, 1, 1]], [[2, 0, 1, 1]])
    with pytest.raises(ValueError, match=r"^a must have shape \(N, 4\)"):
        box_iou([0, 0, 1, 1], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match=r"^pred_scores must have shape \(2,\)"):
        match_detections([[0, 0, 1, 1], [0, 0, 1, 1]], [0.5], [], IOU50)
    with pytest.raises(ValueError, match=r"^gt_boxes row 0 is not finite"):
        match_detections([], [], [[0, 0, np.nan, 1]], IOU50)
    with pytest.raises(ValueError, match=r"^gt_labels must have shape \(0,\)"):
        match_detections([[0, 0, 1, 1]], [0.5], [], IOU50, pred_labels=[0], gt_labels=[0])
    with pytest.raises(ValueError, match="match_detections: give both"):
        match_detections([[0, 0, 1, 1]], [0.5], [], IOU50, pred_labels=[0])
    for images in ([], two_images()[0], "abc"):
        with pytest.raises(ValueError, match="non-empty sequence of per-image dicts"):
            froc_curve(images, IOU50)
    froc = froc_curve(two_images(), IOU50)
    with pytest.raises(ValueError, match="fppi must be >= 0"):
        sensitivity_at_fppi(froc, [0.5, -1])
    for bad_range in ((1, 1), (-0.5, 1), (2, 1)):
        with pytest.raises(ValueError, match="fppi_range must satisfy 0 <= low < high"):
            aufc(froc, bad_range)
    with pytest.raises(ValueError, match="recall_points must be >= 2"):
        average_precision(two_images(), IOU50, recall_points=1)


def test_patient_bootstrap_resamples_whole_patients_deterministically():
    # patient p has 2 images, q has 1: a resample draws 2 patients, so it holds 2, 3 or 4 images, p's in pairs
    images = [image([], [], [], patient="p"), image([], [], [], patient="p"), image([], [], [], patient="q")]
    result = patient_bootstrap(images, len, n_resamples=200, seed=1)
    assert isinstance(result, BootstrapResult) and result.estimate == 3.0 and result.samples.shape == (200,)
    assert set(result.samples) == {2.0, 3.0, 4.0}
    assert set(patient_bootstrap(images[:2], len, n_resamples=50).samples) == {2.0}  # one patient: always both images
    no_patient = [{k: v for k, v in im.items() if k != "patient"} for im in images]
    assert set(patient_bootstrap(no_patient, len, n_resamples=50).samples) == {3.0}  # each image its own patient
    with pytest.raises(ValueError, match="n_resamples >= 1"):
        patient_bootstrap(images, len, n_resamples=0)


def detector(n_images: int, found: int, seed: int = 0) -> list[dict]:
    """`n_images` images with one gt each; the detector finds the gt on the first `found`, else puts a FP elsewhere."""
    rng = np.random.default_rng(seed)
    gt = [[10, 10, 20, 20]]
    return [
        image([gt[0] if i < found else [50, 50, 60, 60]], [rng.uniform(0.1, 1.0)], gt, patient=f"pt{i // 2}")
        for i in range(n_images)
    ]


def froc_aufc(images):
    return aufc(froc_curve(images, "iou:0.5"))


def test_patient_bootstrap_ci_contains_estimate_and_is_seeded():
    images = detector(20, found=12)
    first = patient_bootstrap(images, froc_aufc, n_resamples=200, seed=3)
    again = patient_bootstrap(images, froc_aufc, n_resamples=200, seed=3)
    other = patient_bootstrap(images, froc_aufc, n_resamples=200, seed=4)
    np.testing.assert_array_equal(first.samples, again.samples)
    assert first.ci == again.ci and not np.array_equal(first.samples, other.samples)
    low, high = first.ci
    assert low < first.estimate < high and low < high
    assert first.estimate == pytest.approx(froc_aufc(images))


def test_compare_models_bootstrap_p_values():
    better, worse = detector(20, found=20), detector(20, found=4)
    result = compare_models_bootstrap(better, worse, froc_aufc, n_resamples=200, seed=0)
    assert isinstance(result, BootstrapComparison) and result.samples.shape == (200,)
    # A's AUFC is 1, B's is at most 4/20 in every resample: every difference > 0, so p = (0 + 1) / (200 + 1)
    assert result.difference > 0.8 and result.ci[0] > 0.5
    assert result.p_value == pytest.approx(1 / 201)
    assert result.mean_difference == pytest.approx(result.samples.mean())
    same = compare_models_bootstrap(worse, worse, froc_aufc, n_resamples=200, seed=0)
    # identical models: all 200 differences are 0 (<= 0), p = 201 / 201
    assert same.difference == 0.0 and same.ci == (0.0, 0.0) and same.p_value == 1.0
    swapped = compare_models_bootstrap(worse, better, froc_aufc, n_resamples=200, seed=0)
    assert swapped.p_value == 1.0 and swapped.difference == pytest.approx(-result.difference)
    np.testing.assert_allclose(swapped.samples, -result.samples)  # the same patient resamples for both models


def test_compare_models_bootstrap_requires_aligned_images():
    a = detector(4, found=2)
    with pytest.raises(ValueError, match="must be aligned, got 4 and 3 images"):
        compare_models_bootstrap(a, a[:3], froc_aufc)
    shuffled = [a[2], a[3], a[0], a[1]]  # other patients at the same index
    with pytest.raises(ValueError, match=r"images_a\[0\] and images_b\[0\] differ in patient"):
        compare_models_bootstrap(a, shuffled, froc_aufc)
