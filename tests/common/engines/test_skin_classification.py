"""Skin classification engines.

The report (melanoma threshold metrics, foreground baselines), the Grad-CAM writer and the resumable early stopping.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

from common.engines import GradCAMWriter, SkinClassificationReport, gradcam_overlay, predict_probabilities
from common.engines.skin_classification import ResumableEarlyStopHandler


class _Logger:
    def info(self, *args):
        pass


class _SpotNet(torch.nn.Module):
    """Class 0 logit = mean brightness of the top-left quadrant (a known place for Grad-CAM to find)."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.weight[0] = 1.0
            self.features.bias.zero_()

    def forward(self, x):
        f = torch.relu(self.features(x))
        h, w = f.shape[-2:]
        return torch.stack([f[:, 0, : h // 2, : w // 2].mean((1, 2)), f[:, 1].mean((1, 2))], 1)


def _mask_file(path: Path, side: int) -> str:
    mask = np.zeros((32, 32), np.uint8)
    mask[:side, :side] = 255
    Image.fromarray(mask).save(path)
    return str(path)


def test_report_melanoma_metrics_threshold_and_baselines(tmp_path: Path):
    probs = [torch.tensor(p) for p in ([0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.1, 0.6])]
    labels = [0, 0, 1, 2]
    output = [{"pred": p, "label": torch.nn.functional.one_hot(torch.tensor(y), 3)} for p, y in zip(probs, labels)]
    batch = [{"image": MetaTensor(torch.zeros(1), meta={"filename_or_obj": f"/d/ISIC_{k}.jpg"})} for k in range(4)]
    engine = SimpleNamespace(state=SimpleNamespace(output=output, batch=batch), logger=_Logger())
    # masks: melanomas are the large lesions, so the foreground-ratio baseline ranks them perfectly
    test_items = [
        {"label": y, "mask": _mask_file(tmp_path / f"m{k}.png", (20, 18, 6, 4)[k])} for k, y in enumerate(labels)
    ]
    # validation: melanoma scores 0.55 and 0.65 against 0.5 for the others -> ROC threshold 0.55
    val = [{"image": torch.full((3, 4, 4), v), "label": y} for v, y in ((0.55, 0), (0.65, 0), (0.5, 1), (0.5, 2))]
    net = lambda x: torch.log(torch.stack([x.mean((1, 2, 3)), 0.5 * torch.ones(len(x)), 0.1 * torch.ones(len(x))], 1))  # noqa: E731
    net.eval = lambda: None
    report = SkinClassificationReport(tmp_path / "eval", ["MEL", "NV", "BKL"], positive_class=0,
                                      test_datalist=test_items, threshold_datalist=val, network=net,
                                      transform=lambda d: d)  # fmt: skip
    report._reset()
    report._collect(engine)
    report(engine)
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    m = result["metrics"]
    assert m["melanoma_auc"] == 1.0 and m["trivial_melanoma_auc"] == 0.5
    assert m["sensitivity_at_0.5"] == 1.0 and m["specificity_at_0.5"] == 1.0
    assert m["roc_threshold"] == pytest.approx(0.55 / 1.15, abs=1e-6)  # softmax of the log-scores
    assert m["baseline_foreground_ratio"] == 1.0 and m["baseline_bbox_ratio"] == 1.0
    assert m["accuracy"] == 1.0 and m["trivial_accuracy"] == 0.5
    assert set(result["cases"]) == {f"ISIC_{k}.jpg" for k in range(4)} and result["num_cases"] == 4


def test_predict_probabilities_batches_a_datalist():
    items = [{"image": torch.rand(3, 8, 8), "label": k % 2} for k in range(5)]
    probs, labels = predict_probabilities(_SpotNet(), items, lambda d: d, batch_size=2)
    assert probs.shape == (5, 2) and np.allclose(probs.sum(1), 1) and labels.tolist() == [0, 1, 0, 1, 0]


def test_gradcam_overlay_and_writer_find_the_evidence(tmp_path: Path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    picture = gradcam_overlay(rng.random((3, 16, 12)), rng.random((16, 12)))
    assert picture.shape == (16, 24, 3) and picture.dtype == np.uint8
    network = _SpotNet().eval()
    image = MetaTensor(torch.rand(1, 3, 32, 32) * 0.2, meta={"filename_or_obj": ["/d/case_7.png"]})
    image[:, :, :8, :8] += 0.8  # bright evidence in the (MONAI-ordered) top-left corner
    with torch.no_grad():
        pred = torch.softmax(network(image.as_tensor()), 1)[0]
    engine = SimpleNamespace(state=SimpleNamespace(output=[{"pred": pred}], batch={"image": image}))
    writer = GradCAMWriter(network, "features", tmp_path / "out", ["MEL", "NV"], explain_class=0)
    writer(engine)
    record = json.loads((tmp_path / "out" / "case_7.json").read_text())
    assert set(record["probabilities"]) == {"MEL", "NV"} and record["gradcam_class"] == "MEL"
    heat = writer.cam(image.as_tensor(), 0)[0]
    assert heat[:16, :16].mean() > heat[16:, 16:].mean() + 0.2
    overlay = np.asarray(Image.open(tmp_path / "out" / "case_7_gradcam.png"))
    assert overlay.shape == (32, 64, 3)


def _early_stopping_run(scores, patience, state=None, max_epochs=10):
    """A trainer whose 'validation' score per epoch comes from ``scores``; returns (handler, epochs run)."""
    from ignite.engine import Engine, Events

    trainer = Engine(lambda engine, batch: None)
    values = iter(scores)
    stop = ResumableEarlyStopHandler(patience=patience, score_function=lambda engine: next(values))
    if state is not None:
        stop.load_state_dict(state)  # as TrainingCheckpoints does, possibly before the trainer is set
    stop.set_trainer(trainer)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, stop)
    epochs = []
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda engine: epochs.append(engine.state.epoch))
    trainer.run([0], max_epochs=max_epochs)
    return stop, epochs


def test_early_stopping_state_survives_a_resume():
    stop, epochs = _early_stopping_run([0.5, 0.6, 0.6, 0.6], patience=2)
    assert epochs == [1, 2, 3, 4] and stop.state_dict() == {"counter": 2, "best_score": 0.6}
    # the state saved with a stopped run: the resumed trainer stops at its start, before any epoch
    _, again = _early_stopping_run([], patience=2, state=stop.state_dict())
    assert again == []
    # a larger patience continues it, counting on from the saved count
    resumed, more = _early_stopping_run([0.6, 0.6], patience=3, state=stop.state_dict())
    assert more == [1] and resumed.state_dict()["counter"] == 3
    # before any trainer, the state is kept as loaded
    fresh = ResumableEarlyStopHandler(patience=1, score_function=lambda engine: 0.0)
    assert fresh.state_dict() == {"counter": 0, "best_score": None}
    fresh.load_state_dict({"counter": 1, "best_score": 0.2})
    assert fresh.state_dict() == {"counter": 1, "best_score": 0.2}
