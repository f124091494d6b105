"""Detection engines: RetinaNet trainer and evaluator, mAP key metric, metrics.json report, inference writer."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from monai.data import DataLoader, MetaTensor
from monai.data.utils import no_collation
from monai.handlers import ValidationHandler
from PIL import Image

from common.engines import (
    DETECTION_IOU_THRESHOLDS,
    DetectionEvaluator,
    DetectionFROCMetric,
    DetectionMAPMetric,
    DetectionReport,
    DetectionTrainer,
    DetectionWriter,
    TrainingCheckpoints,
    brightest_region_baseline,
)
from common.metrics import box_iou
from common.networks import make_anchor_generator, retinanet, retinanet_detector


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny inputs: one intra-op thread is faster than two on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# bright squares [x1, y1, x2, y2] (x along the first spatial axis); the last image is normal
SQUARES = [[20, 30, 52, 62], [70, 16, 102, 48], [40, 80, 72, 112], None]


def _image(square, size=(128, 128), seed=0):
    rng = np.random.default_rng(seed)
    array = rng.normal(0.0, 0.1, (1, *size)).astype(np.float32)
    if square is not None:
        x1, y1, x2, y2 = square
        array[0, x1:x2, y1:y2] += 1.0
    return array


def _items():
    items = []
    for k, square in enumerate(SQUARES):
        image = MetaTensor(torch.from_numpy(_image(square, seed=k)), meta={"filename_or_obj": f"/data/img_{k}.png"})
        boxes = torch.tensor([square], dtype=torch.float32) if square else torch.zeros(0, 4)
        labels = torch.zeros(len(boxes), dtype=torch.long)
        items.append({"image": image, "box": boxes, "label": labels, "patient": f"p{k // 2}"})
    return items


def _detector():
    torch.manual_seed(0)
    network = retinanet("resnet18", num_classes=1, in_channels=1, fpn_channels=16)
    return retinanet_detector(
        network, make_anchor_generator(), score_thresh=0.0, detections_per_img=10, roi_size=(128, 128),
        batch_size_per_image=32, min_neg=8,
    )  # fmt: skip


def _loader(items, batch_size=2):
    return DataLoader(items, batch_size=batch_size, shuffle=False, collate_fn=no_collation, num_workers=0)


def test_iou_thresholds_are_the_papers_model_selection():
    assert DETECTION_IOU_THRESHOLDS == (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def test_trainer_trains_validates_and_checkpoints_the_network(tmp_path):
    detector = _detector()
    items = _items()
    optimizer = torch.optim.Adam(detector.network.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    evaluator = DetectionEvaluator("cpu", _loader(items, 4), detector, key_val_metric={"val_map": DetectionMAPMetric()})
    before = {k: v.clone() for k, v in detector.network.state_dict().items()}
    trainer = DetectionTrainer(
        "cpu", 2, _loader(items), detector, optimizer, lr_scheduler=scheduler,
        train_handlers=[ValidationHandler(1, evaluator), TrainingCheckpoints(tmp_path, detector.network, evaluator)],
    )  # fmt: skip
    assert trainer.network is detector.network and evaluator.network is detector.network
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(e.state.output))
    trainer.run()
    assert len(losses) == 4
    for output in losses:
        assert {"loss", "classification_loss", "box_regression_loss"} <= set(output)
        total = output["classification_loss"] + output["box_regression_loss"]
        assert math.isfinite(float(output["loss"])) and float(output["loss"]) == pytest.approx(float(total))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.25)  # stepped once per epoch
    after = detector.network.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    value = evaluator.state.metrics["val_map"]
    assert isinstance(value, float) and 0.0 <= value <= 1.0
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert set(saved) == set(detector.network.state_dict())


def test_evaluator_outputs_per_image_predictions_with_postprocessing():
    detector = _detector()
    items = _items()
    evaluator = DetectionEvaluator(
        "cpu", _loader(items, 3), detector, key_val_metric={"val_map": DetectionMAPMetric()},
        postprocessing=lambda d: {**d, "pred_box": d["pred_box"] + 1000.0, "mapped": True},
    )  # fmt: skip
    outputs = []
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: outputs.extend(e.state.output))
    evaluator.run()
    assert len(outputs) == 4
    for item, output in zip(items, outputs):
        assert output["mapped"] and output["image"].meta["filename_or_obj"] == item["image"].meta["filename_or_obj"]
        assert torch.equal(output["box"], item["box"]) and torch.equal(output["label"], item["label"])
        n = len(output["pred_score"])
        assert 0 < n <= 10 and output["pred_box"].shape == (n, 4) and output["pred_label"].shape == (n,)
        assert (output["pred_box"] >= 1000.0 - 1e-3).all()
    assert 0.0 <= evaluator.state.metrics["val_map"] <= 1.0
    assert detector.training  # detections, not losses, came back; eval_mode restored the mode it found


def test_trainer_with_a_ddp_network_and_batches_without_objects(tmp_path):
    """A batch of normal images has no positive anchor; DDP still gets a gradient for every parameter."""
    import torch.distributed as dist

    from common.distributed import wrap

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        detector = _detector()
        detector.network = wrap(detector.network)
        assert isinstance(detector.network, torch.nn.parallel.DistributedDataParallel)
        normal = [item for item in _items() if len(item["box"]) == 0] * 2
        optimizer = torch.optim.SGD(detector.network.parameters(), lr=1e-3)
        trainer = DetectionTrainer("cpu", 1, _loader(normal, 1), detector, optimizer)
        trainer.run()
        assert trainer.state.iteration == 2 and float(trainer.state.output["box_regression_loss"]) == 0.0
    finally:
        dist.destroy_process_group()


def test_map_metric_perfect_missing_gt_and_empty():
    gt = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    metric = DetectionMAPMetric()
    metric.update([{"box": gt, "pred_box": gt, "pred_score": torch.tensor([0.9])}])
    metric.update({"box": torch.zeros(0, 4), "pred_box": torch.zeros(0, 4), "pred_score": torch.zeros(0)})
    assert metric.compute() == 1.0
    metric.reset()
    metric.update([{"box": torch.zeros(0, 4), "pred_box": gt, "pred_score": torch.tensor([0.9])}])
    assert metric.compute() == 0.0  # no gt at all: 0, not NaN
    metric.reset()
    with pytest.raises(Exception, match="at least one image"):
        metric.compute()


def test_froc_metric_aufc_and_tpr_by_hand():
    gt = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    far = torch.tensor([[60.0, 60.0, 80.0, 80.0]])
    images = [
        # the cluster found at score 0.6, after a false positive at 0.9
        {"box": gt, "pred_box": torch.cat([far, gt]), "pred_score": torch.tensor([0.9, 0.6])},
        {"box": torch.zeros(0, 4), "pred_box": far, "pred_score": torch.tensor([0.3])},  # a normal image
    ]
    # FROC: (FPpI 0.5, TPR 0) at 0.9, (0.5, 1) at 0.6, (1.0, 1) at 0.3; AUFC[0, 1] = 1 over [0.5, 1] / 1 = 0.5
    aufc_metric = DetectionFROCMetric("aufc", fppi_range=(0.0, 1.0))
    aufc_metric.update(images)
    assert aufc_metric.compute() == pytest.approx(0.5)
    tpr = DetectionFROCMetric("tpr", fppi=0.5)
    tpr.update(images)
    assert tpr.compute() == 1.0
    tpr_low = DetectionFROCMetric("tpr", fppi=0.1)
    tpr_low.update(images)
    assert tpr_low.compute() == 0.0
    with pytest.raises(ValueError, match="statistic must be"):
        DetectionFROCMetric("auc")
    with pytest.raises(ValueError, match="fppi_range"):
        DetectionFROCMetric(fppi_range=(1.0, 0.5))


def test_brightest_region_baseline_finds_a_lone_bright_square():
    box, score = brightest_region_baseline(_image([40, 70, 60, 90]), box_size=20)
    assert box_iou(box[None], [[40, 70, 60, 90]])[0, 0] > 0.8 and score > 0.5
    # x is the first spatial axis of a non-square image; a corner square keeps its box inside the image
    wide = _image([70, 10, 80, 20], size=(96, 64))[0]
    box, _ = brightest_region_baseline(wide, box_size=10, sigma=2)
    assert box_iou(box[None], [[70, 10, 80, 20]])[0, 0] > 0.8
    corner, _ = brightest_region_baseline(_image([0, 0, 8, 8]), box_size=(20, 30))
    assert corner.tolist() == [0.0, 0.0, 20.0, 30.0]
    with pytest.raises(ValueError, match="box_size"):
        brightest_region_baseline(wide, box_size=0)


def _run_handler(handler, batches):
    engine = Engine(lambda engine, batch: batch)
    handler.attach(engine)
    engine.run(batches, max_epochs=1)
    return engine


def _perfect_batches():
    items = _items()
    for item in items:
        item.update(pred_box=item["box"].clone(), pred_score=torch.full((len(item["box"]),), 0.9))
        item["pred_label"] = torch.zeros(len(item["box"]), dtype=torch.long)
    return [items[:2], items[2:]]


def test_report_on_perfect_predictions(tmp_path):
    report = DetectionReport(tmp_path, n_resamples=50, baseline_box_size=32)
    _run_handler(report, _perfect_batches())
    payload = json.loads((tmp_path / "metrics.json").read_text())
    metrics = payload["metrics"]
    expected = {"tpr_at_0.1_fppi", "tpr_at_0.5_fppi", "tpr_at_1_fppi", "aufc_0_0.1", "aufc_0_1", "map",
                "precision_at_threshold", "recall_at_threshold", "f1_at_threshold", "best_f1", "best_f1_threshold",
                "best_f1_precision", "best_f1_recall"}  # fmt: skip
    assert set(metrics) == expected
    assert metrics["tpr_at_0.1_fppi"] == 1.0 and metrics["aufc_0_0.1"] == 1.0 and metrics["aufc_0_1"] == 1.0
    assert metrics["map"] == 1.0 and metrics["f1_at_threshold"] == 1.0 and metrics["best_f1_threshold"] == 0.9
    intervals = payload["confidence_intervals"]
    assert intervals["tpr_at_0.1_fppi"] == [1.0, 1.0] and intervals["aufc_0_1"] == [1.0, 1.0]
    assert intervals["level"] == 0.95 and intervals["n_resamples"] == 50
    assert payload["froc"] == [{"fppi": 0.0, "sensitivity": 1.0, "threshold": 0.9}]
    assert (payload["num_images"], payload["num_patients"], payload["num_clusters"]) == (4, 2, 3)
    assert payload["num_normal_images"] == 1 and payload["cases"]["img_3.png"]["num_clusters"] == 0
    baseline = payload["trivial_baseline"]
    assert set(baseline["metrics"]) == expected and baseline["box_size"] == 32
    # the squares are the brightest regions: the baseline finds the three clusters and one FP on the normal image
    assert baseline["metrics"]["tpr_at_1_fppi"] == 1.0 and baseline["froc"][-1]["fppi"] == 0.25
    assert payload["settings"]["criterion"] == "iou:0.1" and payload["settings"]["iou_thresholds"][0] == 0.1


def test_report_of_a_network_has_sorted_froc_points_and_mapped_baseline(tmp_path):
    detector = _detector()
    shifted = []
    report = DetectionReport(
        tmp_path, filename="val.json", n_resamples=10, baseline_box_size=32, criterion="centre_distance:20",
        baseline_postprocessing=lambda d: shifted.append(d["pred_box"]) or {**d, "pred_box": d["pred_box"] + 1},
        extra={"split": "test"},
    )  # fmt: skip
    DetectionEvaluator("cpu", _loader(_items()), detector, val_handlers=[report]).run()
    payload = json.loads((tmp_path / "val.json").read_text())
    points = payload["froc"]
    assert len(points) >= 2 and payload["split"] == "test" and len(shifted) == 4
    assert all(a["fppi"] <= b["fppi"] and a["threshold"] >= b["threshold"] for a, b in zip(points, points[1:]))
    assert all(0.0 <= p["sensitivity"] <= 1.0 for p in points)
    assert all(v is None or 0.0 <= v <= 1.0 for k, v in payload["metrics"].items() if k != "best_f1_threshold")
    assert payload["trivial_baseline"]["froc"] and payload["num_predictions"] == 40


def test_writer_writes_the_given_boxes(tmp_path):
    image = MetaTensor(torch.zeros(1, 96, 64), meta={"filename_or_obj": "/data/case_a.dcm"})  # W = 96, H = 64
    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0], [50.0, 5.0, 60.0, 15.0]])
    first = {"image": image, "pred_box": boxes, "pred_label": torch.tensor([0, 0]),
             "pred_score": torch.tensor([0.9, 0.1])}  # fmt: skip
    second = {"image": MetaTensor(torch.ones(1, 32, 32), meta={"filename_or_obj": "/data/case_b.png"}),
              "pred_box": torch.zeros(0, 4), "pred_label": torch.zeros(0), "pred_score": torch.zeros(0)}  # fmt: skip
    _run_handler(DetectionWriter(tmp_path, draw_threshold=0.5), [[first], [second]])
    record = json.loads((tmp_path / "case_a.json").read_text())
    assert record == {"image": "/data/case_a.dcm", "box_mode": "xyxy", "box": boxes.tolist(), "label": [0, 0],
                      "score": pytest.approx([0.9, 0.1])}  # fmt: skip
    assert json.loads((tmp_path / "case_b.json").read_text())["box"] == []
    with open(tmp_path / "detections.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image", "x1", "y1", "x2", "y2", "label", "score"] and len(rows) == 3
    assert [float(v) for v in rows[1][1:5]] == boxes[0].tolist() and rows[2][0] == "/data/case_a.dcm"
    picture = np.asarray(Image.open(tmp_path / "case_a_overlay.png"))
    assert picture.shape == (64, 96, 3)  # rows x columns
    assert picture[20, 10].tolist() == [255, 0, 0] and picture[39, 29].tolist() == [255, 0, 0]
    assert picture[5, 50].tolist() != [255, 0, 0]  # below draw_threshold
    assert (tmp_path / "case_b_overlay.png").is_file()


def test_writer_overlay_from_the_file_and_mismatched_outputs(tmp_path):
    source = tmp_path / "scan.png"
    source.write_bytes(b"")
    loaded = []

    def loader(path):
        loaded.append(path)
        return torch.zeros(1, 40, 30)

    item = {"image": MetaTensor(torch.zeros(1, 8, 8), meta={"filename_or_obj": str(source)}),
            "pred_box": torch.tensor([[1.0, 2.0, 20.0, 25.0]]), "pred_label": torch.tensor([1]),
            "pred_score": torch.tensor([0.7])}  # fmt: skip
    _run_handler(DetectionWriter(tmp_path / "out", image_loader=loader), [[item]])
    assert loaded == [str(source)]
    assert np.asarray(Image.open(tmp_path / "out" / "scan_overlay.png")).shape == (30, 40, 3)
    bad = {**item, "pred_score": torch.tensor([0.7, 0.2])}
    with pytest.raises(ValueError, match="1 boxes, 1 labels and 2 scores"):
        _run_handler(DetectionWriter(tmp_path / "bad"), [[bad]])
