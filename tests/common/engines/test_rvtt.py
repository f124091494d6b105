"""Tests of common.engines.rvtt: the four-stage rVTT trainer, ROI patch selection and the comparison writer."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from PIL import Image

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


def _trainer(max_epochs: int, stage_epochs=(1, 1, 1)):
    torch.manual_seed(0)
    hr = torch.rand(4, 3, 32, 32)
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    roi = (torch.rand(4, 1, 32, 32) > 0.7).float()
    loader = [{"image": lr[:2], "label": hr[:2], "roi": roi[:2]}, {"image": lr[2:], "label": hr[2:], "roi": roi[2:]}]
    g = RRDBGenerator(scale=2, channels=8, growth=4, num_blocks=1)
    t1 = VGGStyleDiscriminator(base_channels=4, num_stages=2, hidden=8)
    t2 = VGGStyleDiscriminator(base_channels=4, num_stages=2, hidden=8)
    return RVTTTrainer(
        device="cpu", max_epochs=max_epochs, train_data_loader=loader, network=g,
        optimizer=torch.optim.Adam(g.parameters(), 1e-3), loss_function=ReconstructionLoss(perceptual_weight=0.1),
        t1=t1, t2=t2, t1_optimizer=torch.optim.Adam(t1.parameters(), 1e-3),
        t2_optimizer=torch.optim.Adam(t2.parameters(), 1e-3), adversarial_loss=RelativisticPairLoss(),
        stage_epochs=stage_epochs, roi_patch_size=16, decollate=False,
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
