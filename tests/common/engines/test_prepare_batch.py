from __future__ import annotations

import pytest
import torch

from common.engines import PrepareBatchTargetDict


def test_returns_image_and_target_dict():
    batch = {"image": torch.rand(2, 1, 4, 4), "points": torch.zeros(2, 1, 4, 4), "distance": torch.ones(2, 3, 4, 4)}
    image, targets = PrepareBatchTargetDict(["points", "distance"])(batch, device="cpu")
    assert image is not None and torch.equal(image, batch["image"])
    assert set(targets) == {"points", "distance"} and torch.equal(targets["distance"], batch["distance"])


def test_missing_key_is_named():
    with pytest.raises(KeyError, match=r"batch has no \['distance'\]"):
        PrepareBatchTargetDict(["points", "distance"])({"image": torch.rand(1), "points": torch.rand(1)})
