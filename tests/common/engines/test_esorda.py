"""ESORDA trainer, threshold picker, MIDOG report and whole-slide inference (common/engines/esorda.py)."""

from __future__ import annotations

import json
import resource

import numpy as np
import pytest
import tifffile
import torch
from monai.data.utils import no_collation

from common.engines import (
    COCO_IOU_THRESHOLDS,
    ESORDATrainer,
    F1ThresholdPicker,
    MIDOGReport,
    detect_whole_slide,
    detect_whole_slides,
    esorda_optimizer,
)
from common.networks import DomainAdaptationHead, FCOSDetector, FCOSNetwork


def _detector(**kwargs) -> FCOSDetector:
    torch.manual_seed(0)
    return FCOSDetector(FCOSNetwork(depth=18, fpn_channels=16, head_convs=1), **kwargs)


def test_trainer_steps_the_detector_and_the_discriminators():
    detector = _detector()
    dah = DomainAdaptationHead(16)
    source = [
        {"image": torch.randn(3, 64, 64), "box": torch.tensor([[10.0, 10.0, 30.0, 28.0]]), "label": torch.tensor([0])}
    ] * 2
    target = [{"image": torch.randn(3, 64, 64)}] * 3
    loader = torch.utils.data.DataLoader(source, batch_size=2, collate_fn=no_collation)
    target_loader = torch.utils.data.DataLoader(target, batch_size=2, collate_fn=no_collation)
    optimizer = esorda_optimizer([detector.network, dah], lr=1e-3, optimizer="AdamW")
    before = [p.detach().clone() for p in dah.parameters()]
    trainer = ESORDATrainer("cpu", 3, loader, detector, optimizer, dah=dah, target_data_loader=target_loader)
    trainer.run()
    out = trainer.state.output
    assert out["alignment_loss"] > 0 and torch.isfinite(out["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, dah.parameters())), "the discriminators did not learn"
    with pytest.raises(ValueError, match="target_data_loader"):
        ESORDATrainer("cpu", 1, loader, detector, optimizer, dah=dah)
    source_only = ESORDATrainer("cpu", 1, loader, detector, esorda_optimizer([detector.network, None]))
    source_only.run()
    assert float(source_only.state.output["alignment_loss"]) == 0.0
    with pytest.raises(ValueError, match="SGD"):
        esorda_optimizer([detector.network], optimizer="Adam")


class _Engine:
    def __init__(self, output):
        self.state = type("S", (), {"output": output, "batch": None})()
        self.logger = type("L", (), {"info": staticmethod(lambda *a: None), "warning": staticmethod(lambda *a: None)})()


def test_threshold_picker_finds_the_best_f1_threshold():
    picker = F1ThresholdPicker("centre_distance:30")
    predictions = torch.tensor([[1.0, 1.0, 11.0, 11.0], [100.0, 100.0, 110.0, 110.0]])
    output = [
        {"box": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "pred_box": predictions, "pred_score": torch.tensor([0.8, 0.3])}
    ]
    picker._collect(_Engine(output))
    picker._pick()
    assert 0.3 < picker.threshold <= 0.8 + 1e-6 and picker.best["f1"] == 1.0
    empty = F1ThresholdPicker(default=0.4)
    empty._pick()
    assert empty.threshold == 0.4


def test_midog_report_adds_ap_and_small_object_ap(tmp_path):
    report = MIDOGReport(output_dir=tmp_path, n_resamples=0, score_threshold=0.5)
    boxes = np.array([[0.0, 0.0, 20.0, 20.0], [50.0, 50.0, 100.0, 100.0]])
    images = [{"gt_boxes": boxes, "pred_boxes": boxes.copy(), "pred_scores": np.array([0.9, 0.8])}]
    metrics = report.evaluate(images)["metrics"]
    assert metrics["ap"] == pytest.approx(1.0) and metrics["ap_small"] == pytest.approx(1.0)
    assert metrics["f1_at_threshold"] == 1.0 and len(COCO_IOU_THRESHOLDS) == 10
    images[0]["pred_boxes"] = np.array(
        [[2.0, 2.0, 22.0, 22.0], [50.0, 50.0, 100.0, 100.0]]
    )  # IoU 0.68 on the small one
    metrics = report.evaluate(images)["metrics"]
    assert metrics["ap_small"] < 1.0 and metrics["f1_at_threshold"] == 1.0, "30 px centre distance still hits"
    images[0]["gt_boxes"] = np.array([[50.0, 50.0, 100.0, 100.0]])
    assert report.evaluate(images)["metrics"]["ap_small"] is None


def test_whole_slide_detection_reads_by_tiles_and_writes_outputs(tmp_path):
    rng = np.random.default_rng(0)
    slide = tmp_path / "slide.tiff"
    tifffile.imwrite(slide, rng.integers(0, 255, (300, 420, 3), dtype=np.uint8), photometric="rgb", tile=(64, 64))
    detector = _detector(score_thresh=0.0, detections_per_img=500)
    found = detect_whole_slide(detector, slide, tile_size=128, overlap=0.25, progress=False)
    assert found["tiles"] == len(detector.tile_origins((420, 300))) > 1
    assert (found["box"][:, 2] <= 420).all() and (found["box"][:, 3] <= 300).all()
    assert found["megapixels"] == pytest.approx(0.126)
    written = detect_whole_slides(detector, [{"image": str(slide)}], tmp_path / "out", tile_size=128, progress=False)
    record = json.loads((tmp_path / "out" / "slide.json").read_text())
    assert record["box_mode"] == "xyxy" and len(record["box"]) == len(record["score"])
    assert (tmp_path / "out" / "detections.csv") in written
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0
