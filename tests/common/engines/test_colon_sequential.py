"""Sequential inference from the rectum, the episode trainer and the montage writer."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ignite.engine import Events
from PIL import Image

from common.data import ColonEpisodeDataset
from common.engines import ColonEpisodeTrainer, ColonMontageWriter, SequentialColonInferer, colon_montage
from common.losses import GuidedSETDCLLoss
from common.networks import GuidedSETDCLNet


class CopySupport(torch.nn.Module):
    """A stand-in network whose prediction of the query is the support mask (logits +-10)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(1)
        fg = x[:, 1:2] * 20 - 10
        return torch.cat([-fg, fg], 1)


def _inputs(depth: int = 10, colon=range(2, 7), seed_slice: int = 4) -> torch.Tensor:
    volume = torch.zeros(1, 3, 8, 8, depth)
    volume[0, 0] = 0.5
    for z in colon:
        volume[0, 1, 2:5, 2:5, z] = 1.0  # MRF mask
    volume[0, 2, 3, 3, seed_slice] = 1.0
    return volume


def test_propagation_runs_both_ways_from_the_rectum_and_stops_after_the_colon():
    net = CopySupport()
    prob = SequentialColonInferer(stop_after=2, min_area=4)(_inputs(), net)
    covered = (prob[0, 0] > 0.5).any(0).any(0).nonzero().flatten().tolist()
    # the copied support carries the mask over every slice until the volume ends (the stand-in never loses it)
    assert covered == list(range(10))
    assert len(net.calls) == 9  # every slice but the rectum's, which keeps its MRF mask


def test_empty_prediction_falls_back_to_the_mrf_mask_and_ends_after_empty_slices():
    class Empty(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.ones_like(x[:, :1]), -torch.ones_like(x[:, :1])], 1)

    calls = []

    class Counting(Empty):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(int(x[0, 3].sum() > 0))
            return super().forward(x)

    prob = SequentialColonInferer(stop_after=2)(_inputs(depth=12, colon=range(2, 7), seed_slice=4), Counting())
    assert float(prob[0, 0, ..., 4].sum()) == 9  # the rectum slice keeps its MRF mask
    # upwards: 5, 6 (MRF masks), 7, 8 empty -> stop; downwards: 3, 2 (MRF), 1, 0 empty -> stop
    assert len(calls) == 8 and float(prob[..., 9:].sum()) == 0
    with pytest.raises(ValueError, match="rectum seed"):
        SequentialColonInferer()(torch.zeros(1, 3, 8, 8, 4), Empty())
    with pytest.raises(ValueError, match="expects"):
        SequentialColonInferer()(torch.zeros(1, 2, 8, 8, 4), Empty())


def test_trainer_step_reduces_the_loss_on_one_episode_batch():
    def volume(item: dict) -> dict:
        image = np.zeros((3, 16, 16, 6), np.float32)
        image[0, 2:14, 2:14] = 0.5  # the body
        label = np.zeros((1, 16, 16, 6), np.float32)
        label[0, 5:11, 5:11, :4] = 1
        image[0][label[0] > 0] = 0.0
        image[1] = label[0]
        return {"image": image, "label": label}

    torch.manual_seed(0)
    dataset = ColonEpisodeDataset([{"image": "a"}], volume, augment=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=6)
    net = GuidedSETDCLNet(features=(4, 8), refine_iterations=1, grid=2)
    trainer = ColonEpisodeTrainer(
        device="cpu", max_epochs=8, train_data_loader=loader, network=net,
        optimizer=torch.optim.Adam(net.parameters(), 1e-2), loss_function=GuidedSETDCLLoss(), decollate=False,
    )  # fmt: skip
    losses = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output["ce_loss"])))
    trainer.run()
    assert losses[-1] < losses[0] and {"global_loss", "patch_loss", "context_loss"} <= set(trainer.state.output)


def test_montage_writer_draws_the_contour(tmp_path: Path):
    image = np.full((16, 16, 5), 0.5)
    mask = np.zeros((16, 16, 5))
    mask[4:10, 4:10, 1:4] = 1
    montage = colon_montage(image, mask, columns=2, slices=3, zoom=1)
    assert montage.shape == (32, 32, 3) and (montage == [255, 0, 0]).all(-1).any()  # 3 tiles (+1 blank), 2 per row
    assert colon_montage(image, mask, columns=2, slices=3).shape == (96, 96, 3)
    pred = torch.as_tensor(mask)[None]
    writer = ColonMontageWriter(tmp_path)
    engine = SimpleNamespace(state=SimpleNamespace(output=[{"image": torch.as_tensor(image)[None], "pred": pred}]))
    writer(engine)
    (written,) = tmp_path.glob("*.png")
    assert written.name == "volume_seg_montage.png" and Image.open(written).mode == "RGB"
