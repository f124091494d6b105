"""Tests of common.engines.rvtt.

The four-stage rVTT trainer (one process, and G, T1, T2 DDP-wrapped in a 2-process gloo group), ROI patch selection
and the comparison writer.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from monai.data import MetaTensor
from PIL import Image

from common import distributed
from common.engines import RVTTTrainer, SRComparisonWriter, roi_patch_corners
from common.losses import ReconstructionLoss, RelativisticPairLoss
from common.networks import RRDBGenerator, VGGStyleDiscriminator


def test_roi_patch_corners_centre_on_roi():
    torch.manual_seed(0)
    roi = torch.zeros(2, 1, 32, 32)
    roi[0, 0, 20, 24] = 1
    corners = roi_patch_corners(roi, 2, (32, 32), 8)
    assert corners[0] == (16, 20)
    y, x = corners[1]  # empty mask: a random box inside the image
    assert 0 <= y <= 24 and 0 <= x <= 24
    roi[0, 0] = 0
    roi[0, 0, 0, 31] = 1  # near a corner: the box is clamped inside
    assert roi_patch_corners(roi, 1, (32, 32), 8) == [(0, 24)]
    assert len(roi_patch_corners(None, 3, (32, 32), 8)) == 3
    with pytest.raises(ValueError, match="exceeds"):
        roi_patch_corners(None, 1, (8, 8), 16)


def _batches(n: int = 4) -> list[dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    hr = torch.rand(n, 3, 32, 32)
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    roi = (torch.rand(n, 1, 32, 32) > 0.7).float()
    return [{"image": lr[i : i + 2], "label": hr[i : i + 2], "roi": roi[i : i + 2]} for i in range(0, n, 2)]


def _trainer(max_epochs: int, stage_epochs=(1, 1, 1), loader=None, wrap=lambda net: net, **kwargs):
    loader = _batches() if loader is None else loader
    g = wrap(RRDBGenerator(scale=2, channels=8, growth=4, num_blocks=1))
    t1 = wrap(VGGStyleDiscriminator(base_channels=4, num_stages=2, hidden=8))
    t2 = wrap(VGGStyleDiscriminator(base_channels=4, num_stages=2, hidden=8))
    return RVTTTrainer(
        device="cpu", max_epochs=max_epochs, train_data_loader=loader, network=g,
        optimizer=torch.optim.Adam(g.parameters(), 1e-3), loss_function=ReconstructionLoss(perceptual_weight=0.1),
        t1=t1, t2=t2, t1_optimizer=torch.optim.Adam(t1.parameters(), 1e-3),
        t2_optimizer=torch.optim.Adam(t2.parameters(), 1e-3), adversarial_loss=RelativisticPairLoss(),
        stage_epochs=stage_epochs, roi_patch_size=16, decollate=False, **kwargs,
    )  # fmt: skip


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_stage_of_epoch_and_validation():
    trainer = _trainer(10, stage_epochs=(2, 1, 3))
    assert [trainer.stage_of_epoch(e) for e in range(1, 9)] == [1, 1, 2, 3, 3, 3, 4, 4]
    with pytest.raises(ValueError, match="stage_epochs"):
        _trainer(3, stage_epochs=(1, 1))


@pytest.mark.parametrize("stage", [1, 2, 3, 4])
def test_each_stage_updates_the_right_networks(stage):
    from ignite.engine import Events

    stage_epochs = [0] * (stage - 1) + [1] * (4 - stage)  # the one epoch run is in ``stage``
    trainer = _trainer(1, stage_epochs=stage_epochs[:3])
    before = {name: _snapshot(getattr(trainer, name)) for name in ("network", "t1", "t2")}
    stages = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: stages.append(e.state.output["stage"]))
    trainer.run()
    assert stages == [stage, stage]
    changed = {name: _changed(before[name], getattr(trainer, name)) for name in before}
    assert changed == {"network": stage in (1, 4), "t1": stage in (2, 4), "t2": stage in (3, 4)}
    out = trainer.state.output
    assert torch.isfinite(out["loss"]) and out["pred"].shape == (2, 3, 32, 32)
    if stage == 4:
        assert all(torch.isfinite(out[k]) for k in ("loss_g", "loss_t1", "loss_t2"))


def test_stage4_generator_step_computes_no_tester_gradient():
    # without tester updates, G's stage-4 step alone runs: the frozen testers get no gradient and stay unchanged,
    # and every requires_grad flag is restored (also one that was off before)
    trainer = _trainer(1, stage_epochs=(0, 0, 0), update_testers_in_stage4=False)
    trainer.t2.classifier[-1].bias.requires_grad_(False)
    flags = {name: [p.requires_grad for p in getattr(trainer, name).parameters()] for name in ("t1", "t2")}
    before = {name: _snapshot(getattr(trainer, name)) for name in ("network", "t1", "t2")}
    trainer.run()
    assert _changed(before["network"], trainer.network)
    for name in ("t1", "t2"):
        tester = getattr(trainer, name)
        assert not _changed(before[name], tester)
        assert all(p.grad is None for p in tester.parameters()), f"{name} received gradients from G's loss"
        assert [p.requires_grad for p in tester.parameters()] == flags[name]
    assert torch.isfinite(trainer.state.output["loss_g"]) and torch.isnan(trainer.state.output["loss_t1"])


def _parameters_digest(module: torch.nn.Module) -> str:
    # parameters only: batch-norm running statistics are rank-local under DDP (each rank's last batch)
    return distributed.parameter_digest(torch.nn.ParameterList(list(distributed.unwrap(module).parameters())))


def _ddp_worker(local_rank: int, port: int, result_dir: str) -> None:
    from ignite.engine import Events

    os.environ.update(WORLD_SIZE="2", RANK=str(local_rank), LOCAL_RANK=str(local_rank))
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    device = distributed.initialize("cpu")
    data = _batches(8)  # 4 batches of 2: one shard of 2 batches per rank
    sampler = torch.utils.data.distributed.DistributedSampler(data, shuffle=False)
    loader = torch.utils.data.DataLoader(data, batch_size=None, sampler=sampler)
    torch.manual_seed(100 + local_rank)  # different initial weights: DDP must broadcast rank 0's
    trainer = _trainer(4, stage_epochs=(1, 1, 1), loader=loader, wrap=lambda net: distributed.wrap(net, device))
    names = ("network", "t1", "t2")
    assert all(isinstance(getattr(trainer, n), torch.nn.parallel.DistributedDataParallel) for n in names)
    initial = {n: _parameters_digest(getattr(trainer, n)) for n in names}  # after DDP's broadcast of rank 0's
    stages = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: stages.append(e.state.output["stage"]))
    trainer.run()
    result = {
        "stages": stages,
        "images": [float(b["image"].sum()) for b in loader],
        "initial": initial,
        "final": {n: _parameters_digest(getattr(trainer, n)) for n in names},
    }
    Path(result_dir, f"rank{local_rank}.json").write_text(json.dumps(result))
    distributed.finalize()


@pytest.mark.slow
def test_four_stages_with_ddp_wrapped_generator_and_testers(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ddp_worker, args=(port, str(tmp_path)), nprocs=2, start_method="spawn")
    first, second = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert first["stages"] == second["stages"] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert not set(first["images"]) & set(second["images"]), "the ranks trained on the same batches"
    assert first["initial"] == second["initial"], "DDP did not start the ranks from rank 0's weights"
    for name in ("network", "t1", "t2"):
        assert first["final"][name] != first["initial"][name], f"{name} did not learn"
        assert first["final"][name] == second["final"][name], f"{name} ended with different weights on the ranks"


def test_comparison_writer(tmp_path: Path):
    writer = SRComparisonWriter(str(tmp_path), crop=16)
    lr = MetaTensor(torch.rand(3, 12, 10), meta={"filename_or_obj": "/x/tile_7.png"})
    pred = torch.rand(3, 48, 40)
    path = writer.write({"image": lr, "pred": pred, "label": torch.rand(3, 48, 40)}, "fallback")
    assert path.name == "tile_7_comparison.png"
    figure = np.asarray(Image.open(path))
    assert figure.shape[1] >= 4 * 16  # four panels of the 16-pixel crop
    output = [{"image": torch.rand(3, 8, 8), "pred": torch.rand(3, 32, 32)}]
    engine = SimpleNamespace(state=SimpleNamespace(iteration=3, output=output))
    writer(engine)
    assert (tmp_path / "case_3_0_comparison.png").is_file()
    three_panels = np.asarray(Image.open(tmp_path / "case_3_0_comparison.png"))
    assert three_panels.shape[1] < figure.shape[1] + 1
