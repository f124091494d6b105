from __future__ import annotations

from pathlib import Path

import torch
from monai.engines import SupervisedTrainer

from common.engines import TensorBoardStatsHandler


def test_event_file_appears_only_when_the_handler_logs(tmp_path: Path):
    handler = TensorBoardStatsHandler(log_dir=str(tmp_path / "runs"), output_transform=lambda out: out[0]["loss"])
    assert not (tmp_path / "runs").exists(), "building the handler must not open an event file"
    net = torch.nn.Linear(2, 1)
    data = [{"image": torch.ones(1, 2), "label": torch.ones(1, 1)}]
    trainer = SupervisedTrainer(
        device="cpu", max_epochs=1, train_data_loader=data, network=net, loss_function=torch.nn.MSELoss(),
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1), train_handlers=[handler],
    )  # fmt: skip
    trainer.run()
    handler.close()
    assert list((tmp_path / "runs").glob("events.out.tfevents.*"))
