"""SRM stage (common/transforms/srm.py) with the generator common.engines.load_sr_generator rebuilds."""

from __future__ import annotations

import json

import pytest
import torch

from common.engines import load_sr_generator
from common.networks import RRDBGenerator
from common.transforms import SuperResolution, SuperResolutiond


def test_srm_loads_the_sr_bundles_generator_and_keeps_the_size(tmp_path):
    args = {"in_channels": 3, "out_channels": 3, "scale": 2, "channels": 8, "growth": 4, "num_blocks": 1}
    generator = RRDBGenerator(**args)
    (tmp_path / "models").mkdir()
    torch.save(generator.state_dict(), tmp_path / "models" / "model.pt")
    plan = {"switches": {}, "network": {"_target_": "common.networks.rrdb.RRDBGenerator", **args}}
    (tmp_path / "models" / "training_plan.json").write_text(json.dumps(plan))
    loaded = load_sr_generator(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), generator.state_dict().values()))
    image = torch.rand(3, 20, 16) * 255
    out = SuperResolution(loaded)(image)
    assert out.shape == image.shape and out.min() >= 0 and out.max() <= 255
    assert SuperResolutiond("image", loaded)({"image": image})["image"].shape == image.shape
    assert SuperResolutiond("image", None)({"image": image})["image"] is image, "SRM off: identity"
    with pytest.raises(FileNotFoundError, match="microscopy_super_resolution"):
        load_sr_generator(tmp_path / "nothing")
