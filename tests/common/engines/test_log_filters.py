from __future__ import annotations

import logging
from types import SimpleNamespace

from common.engines import QuietEngineLogs, install_quiet_logs, last_iteration_of_epoch


def _record(name: str, message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_quiet_engine_logs_drops_bookkeeping_only():
    keep = QuietEngineLogs().filter
    assert not keep(_record("ignite.engine.engine.SupervisedEvaluator", "Engine run resuming from iteration 0"))
    assert not keep(_record("ignite.engine.engine.SupervisedEvaluator", "Epoch[1] Complete. Time taken: 00:00:01"))
    assert not keep(_record("ignite.engine.engine.SupervisedEvaluator", "Engine run finished. Time taken: 00:01"))
    assert not keep(_record("monai.data.nvimgcodec_pydicom_plugin", "nvImageCodec is not available; skipping"))
    assert keep(_record("ignite.engine.engine.SupervisedTrainer", "Epoch[1] Complete. Time taken: 00:00:02"))
    assert keep(_record("ignite.engine.engine.SupervisedEvaluator", "Got new best metric of val_dice: 0.5"))
    assert keep(_record("ignite.engine.engine.SupervisedEvaluator", "Engine run resuming", logging.WARNING))
    assert keep(_record("common.engines.training", "resuming from models/training_state.pt"))


def test_install_quiet_logs_attaches_once(monkeypatch):
    handler = logging.StreamHandler()
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    install_quiet_logs()
    install_quiet_logs()
    assert sum(isinstance(f, QuietEngineLogs) for f in handler.filters) == 1


def test_last_iteration_of_epoch():
    engine = SimpleNamespace(state=SimpleNamespace(epoch_length=4))
    assert [i for i in range(1, 13) if last_iteration_of_epoch(engine, i)] == [4, 8, 12]
