"""Tests of common.engines.stage_training: the data order, batch preparation and handlers of the stage trainers."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer
from monai.utils import CommonKeys

from common.engines import PrepareBatchInputAsTarget, attach_stage_handlers, shuffled_loader

logger = logging.getLogger("test_stage_training")


def test_shuffled_loader_follows_one_permutation_per_epoch_and_draws_nothing_else():
    dataset = torch.arange(100, 107)  # item i is 100 + i
    indices = [0, 2, 3, 5, 6]
    torch.manual_seed(0)
    global_before = torch.get_rng_state()
    loader = shuffled_loader(dataset, 2, torch.Generator().manual_seed(7), indices)
    assert len(loader) == 3
    epochs = [[batch.tolist() for batch in loader] for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), global_before), "the global RNG must not be drawn from"

    reference = torch.Generator().manual_seed(7)  # the plain loop the loader stands for
    for batches in epochs:
        order = torch.randperm(len(indices), generator=reference).tolist()
        assert batches == [[100 + indices[i] for i in order[s : s + 2]] for s in range(0, len(order), 2)]
    assert epochs[0] != epochs[1], "each epoch draws a new permutation"
    after = torch.Generator().manual_seed(7)
    loader = shuffled_loader(dataset, 2, after, indices)
    for _ in range(2):
        list(loader)
    assert torch.equal(after.get_state(), reference.get_state()), "one permutation per epoch and nothing else"


def test_shuffled_loader_collates_all_items_by_default_and_checks_its_arguments():
    items = [{"image": torch.full((1, 2), float(k)), "label": k} for k in range(3)]
    batches = list(shuffled_loader(items, 3, torch.Generator(), collate_fn=lambda batch: batch))
    assert len(batches) == 1 and sorted(item["label"] for item in batches[0]) == [0, 1, 2]
    stacked = next(iter(shuffled_loader(items, 2, torch.Generator().manual_seed(0))))
    assert stacked["image"].shape == (2, 1, 2)
    with pytest.raises(ValueError, match="batch_size"):
        shuffled_loader(items, 0, torch.Generator())
    with pytest.raises(ValueError, match="0 items"):
        shuffled_loader(items, 2, torch.Generator(), indices=[])


def test_prepare_batch_input_as_target():
    prepare = PrepareBatchInputAsTarget()
    image = torch.ones(2, 1, 3, 3, dtype=torch.float64)
    x, target = prepare({"image": image, "label": torch.zeros(2)}, "cpu")
    assert x is target and x.dtype == torch.float32 and torch.equal(x, image.float())
    x, target = PrepareBatchInputAsTarget("scan")({"scan": image})
    assert x is target and x.shape == (2, 1, 3, 3)
    x, target = prepare(torch.zeros(4, 2), "cpu")
    assert x is target and x.shape == (4, 2)


def _trainer(epochs: int, items: int = 5, batch_size: int = 2) -> SupervisedTrainer:
    net = torch.nn.Linear(2, 2)
    data = torch.rand(items, 2, generator=torch.Generator().manual_seed(0))
    return SupervisedTrainer(
        device="cpu", max_epochs=epochs, train_data_loader=shuffled_loader(data, batch_size, torch.Generator()),
        network=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), loss_function=torch.nn.MSELoss(),
        prepare_batch=PrepareBatchInputAsTarget(), decollate=False,
    )  # fmt: skip


def test_history_has_one_per_image_mean_per_epoch():
    trainer = _trainer(3)
    losses: list[tuple[int, float]] = []
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED,
        lambda e: losses.append((len(e.state.output["image"]), e.state.output["loss"].item())),
    )
    history: list = []
    attach_stage_handlers(trainer, {"loss": CommonKeys.LOSS, "absent": "no_such_key"}, history, per_image=True)
    trainer.run()
    assert [record["epoch"] for record in history] == [1, 2, 3]
    for epoch, record in enumerate(history):
        steps = losses[3 * epoch : 3 * epoch + 3]  # batches of 2, 2 and 1 images
        assert [n for n, _ in steps] == [2, 2, 1]
        assert record["loss"] == pytest.approx(sum(n * v for n, v in steps) / 5)
        assert math.isnan(record["absent"]), "an average without values is NaN"
    assert trainer.state.metrics["loss"] == history[-1]["loss"]

    unweighted: list = []
    trainer = _trainer(1)
    losses.clear()
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(e.state.output["loss"].item()))
    attach_stage_handlers(trainer, {"loss": CommonKeys.LOSS}, unweighted)
    trainer.run()
    assert unweighted[0]["loss"] == pytest.approx(sum(losses) / 3), "per step without per_image"


def test_stats_handler_logs_once_every_log_every_epochs(caplog):
    trainer = _trainer(4)
    attach_stage_handlers(trainer, {"loss": CommonKeys.LOSS}, logger=logger, log_every=2,
                          message="toy epoch {epoch}/{max_epochs}: loss {loss:.4f}")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="test_stage_training"):
        trainer.run()
    lines = [r.getMessage() for r in caplog.records if r.name == "test_stage_training"]
    assert [line.split(":")[0] for line in lines] == ["toy epoch 2/4", "toy epoch 4/4"]
    assert f"{trainer.state.metrics['loss']:.4f}" in lines[-1]
    assert logger.propagate, "the caller's logger keeps sending its records to the application's handlers"

    caplog.clear()
    silent = _trainer(2)
    attach_stage_handlers(silent, {"loss": CommonKeys.LOSS}, logger=logger, log_every=0, message="toy epoch")
    with caplog.at_level(logging.INFO, logger="test_stage_training"):
        silent.run()
    assert not [r for r in caplog.records if r.name == "test_stage_training"]


def test_tensorboard_scalars_per_epoch_only_with_a_log_folder(tmp_path: Path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    history: list = []
    trainer = _trainer(3)
    attach_stage_handlers(trainer, {"ae_loss": CommonKeys.LOSS}, history, log_dir=tmp_path / "runs")
    trainer.run()
    events = EventAccumulator(str(tmp_path / "runs"))
    events.Reload()
    scalars = events.Scalars("ae_loss")
    assert [s.step for s in scalars] == [1, 2, 3]
    assert [s.value for s in scalars] == pytest.approx([record["ae_loss"] for record in history])

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    trainer = _trainer(1)
    attach_stage_handlers(trainer, {"ae_loss": CommonKeys.LOSS})
    trainer.run()
    assert not list((tmp_path / "elsewhere").iterdir()), "no log folder: nothing written"


def test_progress_bar_over_epochs(capsys, monkeypatch):
    import tqdm.autonotebook

    class ShownBar(tqdm.autonotebook.tqdm):
        """tqdm shown although the suite disables bars (TQDM_DISABLE, read when tqdm is imported)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": False})

    monkeypatch.setattr(tqdm.autonotebook, "tqdm", ShownBar)
    trainer = _trainer(3)
    attach_stage_handlers(trainer, {"loss": CommonKeys.LOSS}, progress="toy stage")
    trainer.run()
    shown = capsys.readouterr().out
    assert "toy stage" in shown and "[1/3]" in shown and "[2/3]" in shown and "loss=" in shown


def test_an_error_in_training_propagates():
    trainer = _trainer(2)
    attach_stage_handlers(trainer, {"loss": CommonKeys.LOSS}, logger=logger, message="epoch {epoch}")

    def fail(engine):
        raise RuntimeError("broken step")

    trainer.add_event_handler(Events.ITERATION_COMPLETED, fail)
    with pytest.raises(RuntimeError, match="broken step"):
        trainer.run()
