from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from monai.data import MetaTensor

from common.engines import MetricsReport, json_number, summary_table, write_json_atomic, write_text_atomic


class _Engine:
    def __init__(self):
        self.handlers = {}
        self.state = SimpleNamespace(metrics={}, metric_details={}, output=None)
        self.logger = SimpleNamespace(info=lambda *a: None)

    def add_event_handler(self, event, handler):
        self.handlers[event] = handler


def test_report_has_per_class_and_per_case_values(tmp_path: Path):
    from ignite.engine import Events

    report = MetricsReport(tmp_path, class_names=["RV", "Myo", "LV"], extra={"split": "test"})
    engine = _Engine()
    report.attach(engine)
    engine.handlers[Events.EPOCH_STARTED](engine)
    for name in ("a.nii.gz", "b.nii.gz"):
        engine.state.output = [{"pred": MetaTensor(torch.zeros(1), meta={"filename_or_obj": f"/d/{name}"})}]
        engine.handlers[Events.ITERATION_COMPLETED](engine)
    engine.state.metrics = {"dice": 0.5, "hd95": float("nan")}
    engine.state.metric_details = {
        "dice": torch.tensor([[0.2, 0.4, 0.6], [0.4, float("nan"), 0.8]]),
        "dice_all": torch.tensor([[0.5], [0.7]]),
    }
    engine.handlers[Events.EPOCH_COMPLETED](engine)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["metrics"] == {"dice": 0.5, "hd95": None} and data["split"] == "test" and data["num_cases"] == 2
    assert data["per_class"]["dice"]["RV"]["mean"] == pytest.approx(0.3)
    assert data["per_class"]["dice"]["Myo"] == {"mean": 0.4, "std": 0.0, "n": 1, "n_undefined": 1}
    assert data["cases"]["b.nii.gz"]["dice"]["Myo"] is None
    assert data["per_class"]["dice_all"]["all"]["mean"] == pytest.approx(0.6)
    assert math.isclose(data["cases"]["a.nii.gz"]["dice"]["LV"], 0.6)


def test_write_json_atomic_leaves_no_partial_file(tmp_path: Path):
    write_json_atomic(tmp_path / "m.json", {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "m.json", {"a": float("nan")})  # JSON has no NaN: refused, old file kept
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_summary_table_shows_a_few_scalars_and_points_to_the_rest():
    metrics = {f"m{i}": i / 10 for i in range(20)} | {"undefined": None, "curve": [1, 2]}
    table = summary_table(metrics, 7, "/out/metrics.json", limit=3).splitlines()
    assert table[0] == "7 cases; metrics written to /out/metrics.json"
    assert table[1:4] == ["  m0  0.0000", "  m1  0.1000", "  m2  0.2000"]
    assert table[4] == "  ... 19 more in metrics.json"


def test_json_number_rounds_and_turns_undefined_into_null():
    assert json_number(1 / 3) == 0.333333 and json_number(torch.tensor(2.0)) == 2.0
    assert json_number(None) is None and json_number(math.nan) is None and json_number(-math.inf) is None


def test_write_text_atomic_keeps_line_ends_and_leaves_no_temporary(tmp_path: Path):
    path = write_text_atomic(tmp_path / "out" / "boxes.csv", "a,b\r\n1,2\r\n")
    assert path.read_bytes() == b"a,b\r\n1,2\r\n" and oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir()] == ["boxes.csv"]
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "out" / "bad.json", {"x": math.nan})  # JSON has no NaN
    assert [p.name for p in path.parent.iterdir()] == ["boxes.csv"]
