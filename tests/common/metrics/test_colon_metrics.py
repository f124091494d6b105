"""Dice and Jaccard from the same counts; scoring a channel of the input (the MRF mask)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.metrics import dice_jaccard, from_engine_channel


def test_dice_and_jaccard_by_hand():
    pred = np.array([1, 1, 1, 0, 0])
    label = np.array([1, 1, 0, 1, 0])
    dice, jaccard = dice_jaccard(pred, label)  # tp 2, fp 1, fn 1
    assert dice == pytest.approx(4 / 6) and jaccard == pytest.approx(2 / 4)
    assert jaccard == pytest.approx(dice / (2 - dice))
    assert dice_jaccard(np.zeros(3), np.zeros(3)) == (1.0, 1.0)
    with pytest.raises(ValueError, match="differs"):
        dice_jaccard(np.zeros(3), np.zeros(4))


def test_from_engine_channel_takes_the_mrf_channel():
    image = torch.stack([torch.full((2, 2), 0.3), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.zeros(2, 2)])
    label = torch.ones(1, 2, 2)
    preds, labels = from_engine_channel(["image", "label"], 1)([{"image": image, "label": label}])
    assert preds[0].shape == (1, 2, 2) and preds[0].sum() == 2 and labels[0] is label
