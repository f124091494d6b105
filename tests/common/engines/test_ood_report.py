"""Tests of common.engines.ood_report: the OOD evaluation report and the per-image OOD writer, as evaluator handlers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from common.engines import OODEvaluationReport, OODInferenceWriter, fit_ood_thresholds, score_datalist
from common.networks import EarlyExitCNN

SIDE = 32
CLASSES = ("normal", "benign", "malignant")


def _tiny_net() -> EarlyExitCNN:
    torch.manual_seed(1)
    return EarlyExitCNN(spatial_size=SIDE, channels=(2, 2, 2, 2, 2), fc_units=4, exit_channels=2, exit_after=(3,),
                        padding="same").eval()  # fmt: skip


def _images(count: int, seed: int, labelled: bool = True) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.rand(1, SIDE, SIDE, generator=g), "case": f"s{seed}i{i}"} | ({"label": i % 3} if labelled
            else {}) for i in range(count)]  # fmt: skip


class _Engine:
    """What the handlers use of an ignite evaluator: its event registry, state and logger."""

    def __init__(self, **state) -> None:
        self.state = SimpleNamespace(**state)
        self.logger = logging.getLogger("test_ood_report")
        self.events: list = []

    def add_event_handler(self, event, handler) -> None:
        self.events.append((event, handler))


def test_report_handler_adds_the_evaluators_scalars_and_writes_metrics_json(tmp_path: Path):
    report = OODEvaluationReport(_tiny_net(), _images(9, 0), _images(9, 1), {"noise": _images(4, 2, False)},
                                 lambda d: d, tmp_path / "eval", class_names=CLASSES, num_bootstrap=5,
                                 extra={"split": "test"})  # fmt: skip
    engine = _Engine(metrics={"val_accuracy": 0.25, "confusion": [[1, 2]]})
    report.attach(engine)
    [(_, handler)] = engine.events
    handler(engine)
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert written["metrics"]["val_accuracy"] == 0.25 and "confusion" not in written["metrics"], "scalars only"
    assert written["split"] == "test" and written["num_ensemble_members"] == 0 and written["ood_sets"] == {"noise": 4}
    assert not [m for m in written["ood"] if m.startswith("ensemble_")], "no ensemble folder: no ensemble methods"
    assert set(written["rejection"]["msp"]) == {"leave_out_0", "leave_out_5", "leave_out_20"}
    case = written["cases"]["s0i0"]
    assert case["label"] == "normal" and set(case["probabilities"]) == set(CLASSES)
    assert {"msp@0.95", "msp@0.8"} <= set(case["in_distribution"])
    assert not list((tmp_path / "eval").glob("*.tmp*")), "written through a temporary file"


def test_inference_writer_loads_thresholds_at_start_and_records_each_image(tmp_path: Path):
    net = _tiny_net()
    thresholds = {"temperature": 0.001, **fit_ood_thresholds(score_datalist(net, [], _images(8, 3), lambda d: d))}
    (tmp_path / "thresholds.json").write_text(json.dumps(thresholds))
    writer = OODInferenceWriter(net, tmp_path / "thresholds.json", tmp_path / "out", class_names=CLASSES, keep=0.95)
    engine = _Engine(batch={"image": torch.rand(2, 1, SIDE, SIDE)})
    writer.attach(engine)
    assert len(engine.events) == 2 and writer.thresholds is None
    for _, handler in engine.events:  # STARTED, then one ITERATION_COMPLETED
        handler(engine)
    [(name, record), _] = list(writer.records(engine))
    assert record["flag_method"] == "energy_multilevel" and record["predicted_class"] in CLASSES
    assert record["thresholds"]["msp"] == pytest.approx(thresholds["methods"]["msp"]["0.95"], abs=1e-5)
    assert record["in_distribution"] == record["in_distribution_by_method"]["energy_multilevel"]
    assert "ensemble_probabilities" not in record
    assert len(list((tmp_path / "out").glob("*.json"))) == 2, "one file per image of the iteration"
