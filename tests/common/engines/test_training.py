from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import ValidationHandler
from monai.transforms import Compose, RandGaussianNoised

from common.engines import (
    PLAN_FILENAME,
    STATE_FILENAME,
    TrainingCheckpoints,
    check_trained_variant,
    data_fingerprint,
    load_checkpoint,
    network_arguments,
    read_training_plan,
    save_torch_atomic,
    trained_switch,
)

ITEMS = [{"image": f"case{i}.png"} for i in range(4)]


class _Scores:
    """Key metric stand-in: returns the next value of a fixed sequence at each validation."""

    def __init__(self, values):
        self.values = list(values)

    def __call__(self, engine):
        engine.state.metrics["score"] = self.values.pop(0)


def _run(ckpt_dir: Path, max_epochs: int, scores, resume=True, width=4, seed=0):
    torch.manual_seed(seed)
    spec = functools.partial(torch.nn.Linear, 3, width)  # positional, as a plain partial may be
    network = spec()
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    fixed = torch.Generator().manual_seed(0)  # the same data whatever the seed
    data = [
        {"image": torch.randn(2, 3, generator=fixed), "label": torch.randn(2, width, generator=fixed)} for _ in "abc"
    ]
    evaluator = SupervisedEvaluator(device="cpu", val_data_loader=data[:1], network=network, decollate=False)
    evaluator.state.key_metric_name = "score"
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, _Scores(scores))
    checkpoints = TrainingCheckpoints(
        ckpt_dir, network, evaluator=evaluator, state={"optimizer": optimizer}, switches={"width": width},
        network_spec=spec, train_data=ITEMS, bundle_name="toy", bundle_version="0.1.0", resume=resume,
        transforms=Compose([RandGaussianNoised(keys="image", prob=1.0)]),
    )  # fmt: skip
    trainer = SupervisedTrainer(
        device="cpu", max_epochs=max_epochs, network=network, optimizer=optimizer,
        train_data_loader=torch.utils.data.DataLoader(data, batch_size=None, shuffle=True),  # order from the RNG
        loss_function=torch.nn.MSELoss(), decollate=False,
        train_handlers=[ValidationHandler(validator=evaluator, interval=1, epoch_level=True), checkpoints],
    )  # fmt: skip
    trainer.run()
    return trainer, network


def test_plan_records_switches_network_data_and_best(tmp_path: Path):
    _run(tmp_path, 2, [0.3, 0.5])
    plan = json.loads((tmp_path / PLAN_FILENAME).read_text())
    assert plan["bundle"] == "toy" and plan["version"] == "0.1.0" and plan["switches"] == {"width": 4}
    assert plan["network"] == {"_target_": "torch.nn.modules.linear.Linear", "_args_": [3, 4]}
    assert plan["data"] == data_fingerprint(ITEMS) and plan["data"]["num_items"] == 4
    assert plan["best"] == {"metric": "score", "value": 0.5, "epoch": 2} and plan["epochs_completed"] == 2
    assert read_training_plan(tmp_path / "model.pt") == plan  # a checkpoint path finds the plan beside it


def test_worse_epoch_never_replaces_the_best_model(tmp_path: Path):
    _, network = _run(tmp_path, 1, [0.9])
    best = {k: v.clone() for k, v in network.state_dict().items()}
    _run(tmp_path, 3, [0.2, 0.1])  # resumes with best 0.9 remembered
    saved = load_checkpoint(tmp_path / "model.pt")
    assert all(torch.equal(saved[k], best[k]) for k in best)


def test_rerun_resumes_then_a_finished_run_is_not_repeated(tmp_path: Path, caplog):
    _run(tmp_path, 1, [0.1])
    with caplog.at_level(logging.INFO, logger="common.engines.training"):
        trainer, _ = _run(tmp_path, 3, [0.2, 0.3])
    assert "after epoch 1 of 3" in caplog.text and trainer.state.epoch == 3 and trainer.state.iteration == 9
    state_mtime = (tmp_path / STATE_FILENAME).stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="common.engines.training"):
        trainer, _ = _run(tmp_path, 3, [])
    assert "training already finished" in caplog.text and trainer.state.iteration == 9
    assert (tmp_path / STATE_FILENAME).stat().st_mtime_ns == state_mtime


def test_resumed_run_equals_an_uninterrupted_one(tmp_path: Path):
    _, straight = _run(tmp_path / "a", 3, [0.1, 0.2, 0.3])
    _run(tmp_path / "b", 1, [0.1])
    # another seed: the restored RNG state must give the same shuffles as the uninterrupted run
    _, resumed = _run(tmp_path / "b", 3, [0.2, 0.3], seed=123)
    for k, v in straight.state_dict().items():
        assert torch.allclose(v, resumed.state_dict()[k]), k


def test_other_variant_or_resume_false_sets_the_earlier_run_aside(tmp_path: Path, caplog):
    _run(tmp_path, 1, [0.5])
    with caplog.at_level(logging.WARNING, logger="common.engines.training"):
        _run(tmp_path, 1, [0.1], width=5)
    assert "moved to" in caplog.text
    (previous,) = tmp_path.glob("previous-*")
    assert json.loads((previous / PLAN_FILENAME).read_text())["switches"] == {"width": 4}
    assert load_checkpoint(previous / "model.pt")["weight"].shape == (4, 3)
    _run(tmp_path, 1, [0.1], width=5, resume=False)
    assert len(list(tmp_path.glob("previous-*"))) == 2
    _run(tmp_path, 1, [0.1], width=5, resume="false")  # as `--resume false` arrives from the command line
    assert len(list(tmp_path.glob("previous-*"))) == 3


def test_stale_temporaries_are_removed_at_start(tmp_path: Path):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / ".model.pt.abc.tmp").write_bytes(b"half")
    _run(tmp_path, 1, [0.1])
    assert not list(tmp_path.glob(".*.tmp"))


def test_trained_switch_and_check_trained_variant(tmp_path: Path):
    assert trained_switch(tmp_path, "width", 4) == 4  # no plan: the default
    _run(tmp_path, 1, [0.1], width=6)
    assert trained_switch(tmp_path / "model.pt", "width", 4) == 6
    check_trained_variant(tmp_path, {"width": 6}, functools.partial(torch.nn.Linear, 3, 6))
    with pytest.raises(ValueError, match=r"training_plan.json.*--width 4 \(trained with 6\)"):
        check_trained_variant(tmp_path, {"width": 4})
    with pytest.raises(ValueError, match=r"_args_=\[3, 7\] \(trained with \[3, 6\]\)"):
        check_trained_variant(tmp_path, {"width": 6}, functools.partial(torch.nn.Linear, 3, 7))


def test_network_arguments_needs_a_callable_spec():
    assert network_arguments(functools.partial(torch.nn.Linear, 2, bias=False))["bias"] is False
    with pytest.raises(TypeError, match="_mode_: callable"):
        network_arguments(torch.nn.Linear(2, 2))


def test_save_torch_atomic_and_load_checkpoint_name_the_file(tmp_path: Path):
    path = save_torch_atomic({"w": torch.ones(2)}, tmp_path / "m.pt")
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(2)) and not list(tmp_path.glob(".*"))
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.pt: the checkpoint is empty"):
        load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match=r"cut\.pt: cannot read the checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / PLAN_FILENAME).write_text("{")
    with pytest.raises(ValueError, match="not a valid training plan"):
        read_training_plan(tmp_path)
