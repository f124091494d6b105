"""rVTT's kept generator comes from the adversarial stage: compressed schedules and stage-4 model selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import ValidationHandler

from common.engines import PLAN_FILENAME, TrainingCheckpoints, load_checkpoint, rvtt_stage4_start, rvtt_stage_epochs


def test_full_and_longer_runs_keep_the_schedule():
    assert rvtt_stage_epochs(60, [40, 4, 4], 60) == [40, 4, 4]
    assert rvtt_stage_epochs(80, [40, 4, 4], 60) == [40, 4, 4]  # the extra epochs are stage 4
    assert rvtt_stage_epochs(12, [12, 0, 0], 12) == [12, 0, 0]  # no stage 4 planned (SRNet)
    assert rvtt_stage_epochs(1, [0, 0, 0], 60) == [0, 0, 0]  # stage 4 from the first epoch


@pytest.mark.parametrize("max_epochs", [4, 5, 8, 10, 12, 30, 59])
def test_short_runs_are_compressed_and_end_in_stage_4(max_epochs):
    stages = rvtt_stage_epochs(max_epochs, [40, 4, 4], 60)
    assert min(stages) >= 1 and sum(stages) < max_epochs
    assert stages[0] >= stages[1]
    assert rvtt_stage4_start(stages, max_epochs) == sum(stages) + 1 <= max_epochs


def test_too_short_runs_and_bad_counts():
    assert rvtt_stage_epochs(2, [40, 4, 4], 60) == [2, 0, 0]
    assert rvtt_stage4_start([2, 0, 0], 2) == 1  # no stage 4: every validation competes
    with pytest.raises(ValueError, match="three epoch counts"):
        rvtt_stage_epochs(10, [5, 1], 60)
    with pytest.raises(ValueError, match="three epoch counts"):
        rvtt_stage_epochs(10, [5, -1, 1], 60)


class _StagedTrainer(SupervisedTrainer):
    def stage_of_epoch(self, epoch: int) -> int:
        return 1 if epoch < 3 else 4


def _run(ckpt_dir: Path, max_epochs: int, scores: list[float], select_from_epoch: int):
    torch.manual_seed(0)
    network = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    data = [{"image": torch.randn(2, 3), "label": torch.randn(2, 2)} for _ in range(2)]
    evaluator = SupervisedEvaluator(device="cpu", val_data_loader=data[:1], network=network, decollate=False)
    evaluator.state.key_metric_name = "score"
    values = list(scores)
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.__setitem__("score", values.pop(0)))
    weights = {}
    checkpoints = TrainingCheckpoints(ckpt_dir, network, evaluator=evaluator, state={"optimizer": optimizer},
                                      select_from_epoch=select_from_epoch)  # fmt: skip
    trainer = _StagedTrainer(
        device="cpu", max_epochs=max_epochs, network=network, optimizer=optimizer, train_data_loader=data,
        loss_function=torch.nn.MSELoss(), decollate=False,
        train_handlers=[ValidationHandler(validator=evaluator, interval=1, epoch_level=True), checkpoints],
    )  # fmt: skip
    keep = lambda t: weights.__setitem__(t.state.epoch, network.weight.detach().clone())  # noqa: E731
    trainer.add_event_handler(Events.EPOCH_COMPLETED, keep)
    trainer.run()
    return weights


def test_earlier_validations_do_not_compete_for_the_kept_model(tmp_path: Path):
    weights = _run(tmp_path, 4, [0.9, 0.8, 0.1, 0.2], select_from_epoch=3)  # stage 1 validates best, yet is skipped
    plan = json.loads((tmp_path / PLAN_FILENAME).read_text())
    assert plan["best"] == {"metric": "score", "value": 0.2, "epoch": 4, "stage": 4}
    assert plan["model_selection"] == {"from_epoch": 3}
    assert torch.equal(load_checkpoint(tmp_path / "model.pt")["weight"], weights[4])


def test_without_selection_the_best_validation_wins(tmp_path: Path):
    weights = _run(tmp_path, 4, [0.9, 0.8, 0.1, 0.2], select_from_epoch=1)
    plan = json.loads((tmp_path / PLAN_FILENAME).read_text())
    assert plan["best"] == {"metric": "score", "value": 0.9, "epoch": 1, "stage": 1}
    assert "model_selection" not in plan
    assert torch.equal(load_checkpoint(tmp_path / "model.pt")["weight"], weights[1])


def test_no_validation_in_the_selected_epochs_keeps_the_last_weights(tmp_path: Path):
    weights = _run(tmp_path, 2, [0.9, 0.8], select_from_epoch=5)
    plan = json.loads((tmp_path / PLAN_FILENAME).read_text())
    assert plan["best"]["epoch"] == 2 and plan["best"]["value"] is None and plan["best"]["stage"] == 1
    assert torch.equal(load_checkpoint(tmp_path / "model.pt")["weight"], weights[2])
