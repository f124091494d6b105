"""Unit tests of common.engines.mpm_fusion.

The network factory, stage-1 training (and its skip on resume), the report and the class-score writer.
"""

from __future__ import annotations

import functools
import json
from types import SimpleNamespace

import pytest
import torch

from common.engines import (
    PLAN_FILENAME,
    STATE_FILENAME,
    ClassProbabilityWriter,
    MPMClassificationReport,
    data_fingerprint,
    network_arguments,
    train_fusion_autoencoder,
    write_json_atomic,
)
from common.engines.mpm_fusion import CLASS_SCORES_NOTE, fusion_classifier, training_resumes
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


def test_stage_one_logs_and_writes_its_loss_once_per_epoch(tmp_path, caplog):
    import logging

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    net = _net(FusionAutoencoder(width=0.125))
    data = [{"image": torch.rand(3, 96, 96), "label": k % 2} for k in range(3)]
    with caplog.at_level(logging.INFO, logger="common.engines"):
        history = train_fusion_autoencoder(net, data, 2, FusionReconstructionLoss(), 1e-3, 2, log_dir=tmp_path / "runs")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("autoencoder epoch")]
    assert [line.split(":")[0] for line in lines] == ["autoencoder epoch 1/2", "autoencoder epoch 2/2"]
    events = EventAccumulator(str(tmp_path / "runs"))
    events.Reload()
    scalars = events.Scalars("ae_loss")
    assert [s.step for s in scalars] == [1, 2] and [s.value for s in scalars] == pytest.approx(history)


def test_skipped_stage_one_only_freezes():
    torch.manual_seed(0)
    net = _net(FusionAutoencoder(width=0.125))
    before = {k: v.clone() for k, v in net.front.state_dict().items()}
    data = [{"image": torch.rand(3, 96, 96)} for _ in range(2)]
    assert train_fusion_autoencoder(net, data, 3, FusionReconstructionLoss(), 1e-2, 2, skip=True) == []
    assert all(torch.equal(before[k], v) for k, v in net.front.state_dict().items()), "skip must not train"
    assert all(not p.requires_grad for p in net.front.parameters()) and net.front_frozen


@pytest.mark.parametrize(("channels", "fusion"), [(None, True), ([1], False), ([0, 1, 2], False)])
def test_fusion_classifier_builds_the_chosen_front_from_plain_arguments(channels, fusion: bool):
    net = fusion_classifier(channels, 0.125, True, "efficientnet-mini", 32, 0.1).eval()
    assert net.fusion is fusion and isinstance(net.front, FusionAutoencoder if fusion else ChannelSelector)
    with torch.no_grad():
        assert net(torch.rand(2, 3, 96, 96)).shape == (2, 2)
    spec = functools.partial(fusion_classifier, front_channels=channels, width=0.125, classifier="efficientnet-mini")
    recorded = network_arguments(spec)  # what the training plan keeps: JSON values, no module reprs
    assert recorded["_target_"] == "common.engines.mpm_fusion.fusion_classifier"
    assert recorded["front_channels"] == channels and json.dumps(recorded)


def test_training_resumes_follows_the_plan(tmp_path):
    spec = functools.partial(fusion_classifier, front_channels=None, width=0.125)
    switches, data = {"input_mode": "fusion"}, [{"image": "a.png", "label": 0}]
    assert not training_resumes(tmp_path, True, switches, spec, data)  # nothing trained yet
    plan = {"switches": switches, "network": network_arguments(spec), "data": data_fingerprint(data)}
    write_json_atomic(tmp_path / PLAN_FILENAME, plan)
    (tmp_path / STATE_FILENAME).write_bytes(b"state")
    assert training_resumes(tmp_path, True, switches, spec, data)
    assert not training_resumes(tmp_path, False, switches, spec, data)  # --resume false starts afresh
    assert not training_resumes(tmp_path, True, {"input_mode": "stack"}, spec, data)
    assert not training_resumes(tmp_path, True, switches, spec, data + [{"image": "b.png", "label": 1}])


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
    cases = json.loads((tmp_path / "eval" / "metrics.json").read_text())["cases"]
    assert all(set(c["class_scores"]) == {"FA", "FTC"} and "probabilities" not in c for c in cases.values())
    ClassProbabilityWriter(tmp_path / "out")(engine)
    files = sorted((tmp_path / "out").glob("*.json"))
    assert len(files) == 3
    record = json.loads(files[0].read_text())
    assert record["predicted_class"] == "FA"
    # independent sigmoids: named class_scores (not probabilities), with the note, and free not to sum to 1
    assert "probabilities" not in record and record["class_scores_note"] == CLASS_SCORES_NOTE
    assert record["class_scores"] == pytest.approx({"FA": 0.8, "FTC": 0.3})
    assert abs(sum(record["class_scores"].values()) - 1.0) > 0.05
