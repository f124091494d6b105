"""common.distributed in one process, and in a real 2-process gloo group (torch.multiprocessing)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from monai.engines import SupervisedTrainer
from monai.handlers import StatsHandler, ValidationHandler

from common import distributed
from common.distributed import (
    WRITING_HANDLERS,
    RankReport,
    barrier,
    finalize,
    initialize,
    is_main_process,
    local_device,
    main_process_handlers,
    on_main_process,
    parameter_digest,
    rank,
    unwrap,
    world_size,
    wrap,
)


def test_single_process_defaults(monkeypatch):
    for key in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    assert (rank(), world_size(), is_main_process()) == (0, 1, True)
    assert local_device() == torch.device("cpu")
    net = torch.nn.Linear(2, 2)
    assert wrap(net) is net and unwrap(torch.nn.DataParallel(net)) is net
    barrier()  # no-op without a group
    assert on_main_process(lambda a, b=0: a + b, 1, b=2) == 3
    finalize()


def test_initialize_outside_torchrun_says_how(monkeypatch):
    for key in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match="torchrun --standalone"):
        initialize("cpu")


def test_main_process_handlers_selects_by_type(monkeypatch):
    handlers = [StatsHandler(), ValidationHandler(validator=None, interval=1)]
    assert main_process_handlers(handlers) == handlers and main_process_handlers(None) is None
    monkeypatch.setenv("RANK", "1")
    kept = main_process_handlers(handlers)
    assert [type(h).__name__ for h in kept] == ["ValidationHandler"]
    assert "StatsHandler" in WRITING_HANDLERS


def _worker(local_rank: int, port: int, report_dir: str, result_dir: str) -> None:
    os.environ.update(WORLD_SIZE="2", RANK=str(local_rank), LOCAL_RANK=str(local_rank))
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    device = initialize()
    torch.manual_seed(local_rank)  # different initial weights: DDP must broadcast rank 0's
    network = wrap(torch.nn.Linear(3, 1), device)
    data = [{"image": torch.full((2, 3), float(i)), "label": torch.ones(2, 1)} for i in range(8)]
    loader = torch.utils.data.DataLoader(
        data, batch_size=None, sampler=torch.utils.data.distributed.DistributedSampler(data, shuffle=False)
    )
    trainer = SupervisedTrainer(
        device=device, max_epochs=1, train_data_loader=loader, network=network, decollate=False,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.01), loss_function=torch.nn.MSELoss(),
        train_handlers=[RankReport(report_dir, network)],
    )  # fmt: skip
    trainer.run()
    written = on_main_process(lambda: Path(result_dir, "written_by.txt").write_text(str(rank())))
    Path(result_dir, f"result{rank()}.json").write_text(json.dumps({"written": written is not None}))
    finalize()


@pytest.mark.slow
def test_two_process_group_syncs_weights_and_shards_data(tmp_path: Path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(port, str(tmp_path / "reports"), str(tmp_path)), nprocs=2, start_method="spawn")
    reports = [json.loads((tmp_path / "reports" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert reports[0]["final_digest"] == reports[1]["final_digest"] != reports[0]["initial_digest"]
    assert not set(reports[0]["items"]) & set(reports[1]["items"]) and reports[0]["iterations"] == 4
    assert (tmp_path / "written_by.txt").read_text() == "0"
    assert [json.loads((tmp_path / f"result{r}.json").read_text())["written"] for r in (0, 1)] == [True, False]
    assert not dist.is_initialized()


def test_parameter_digest_sees_every_weight():
    net = torch.nn.Linear(2, 2)
    before = parameter_digest(net)
    with torch.no_grad():
        net.bias[0] += 1
    assert parameter_digest(net) != before
    assert parameter_digest(torch.nn.DataParallel(net)) == parameter_digest(net)
    assert distributed.RankReport(None, net).report_dir is None
