"""Unit tests of common.engines.mpm_fusion: stage-1 training, the report and the probability writer."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch

from common.engines import ClassProbabilityWriter, MPMClassificationReport, train_fusion_autoencoder
from common.losses import FusionReconstructionLoss
from common.networks import ChannelSelector, FusionAutoencoder, FusionClassifier, efficientnet_classifier


def _net(front):
    return FusionClassifier(front, efficientnet_classifier("efficientnet-mini", 2, 3, 0.1, 32), 32)


def test_stage_one_reduces_the_loss_and_freezes():
    torch.manual_seed(0)
    net = _net(FusionAutoencoder(width=0.125))
    data = [{"image": torch.rand(3, 96, 96)} for _ in range(4)]
    history = train_fusion_autoencoder(net, data, 4, FusionReconstructionLoss(), 1e-3, 2)
    assert len(history) == 4 and history[-1] < history[0]
    assert all(not p.requires_grad for p in net.front.parameters())
    assert train_fusion_autoencoder(_net(ChannelSelector([0])), data, 2, FusionReconstructionLoss()) == []


class _Logger:
    def info(self, *args):
        pass


def test_report_and_writer(tmp_path):
    probs = [torch.tensor([0.8, 0.3]), torch.tensor([0.2, 0.9]), torch.tensor([0.6, 0.5])]
    labels = [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0])]
    output = [{"pred": p, "label": y} for p, y in zip(probs, labels)]
    batch = [{"image": torch.zeros(1)} for _ in probs]
    engine = SimpleNamespace(state=SimpleNamespace(output=output, batch=batch), logger=_Logger())
    report = MPMClassificationReport(tmp_path / "eval")
    report._reset()
    report._collect(engine)
    report(engine)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert metrics["auroc"] == 1.0 and metrics["trivial_auroc"] == 0.5 and abs(metrics["accuracy"] - 2 / 3) < 1e-9
    ClassProbabilityWriter(tmp_path / "out")(engine)
    files = sorted((tmp_path / "out").glob("*.json"))
    assert len(files) == 3
    assert json.loads(files[0].read_text())["predicted_class"] == "FA"
