"""LoadImageIfPresentd: loads present keys, leaves missing ones out, and is not a LoadImaged (MONAI Label)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from monai.transforms import LoadImaged
from PIL import Image

from common.transforms import LoadImageIfPresentd


def test_loads_present_keys_only(tmp_path: Path):
    Image.fromarray(np.full((6, 5), 255, np.uint8)).save(tmp_path / "m.png")
    loader = LoadImageIfPresentd("mask", image_only=True)
    out = loader({"mask": str(tmp_path / "m.png"), "image": "kept"})
    assert tuple(out["mask"].shape) == (5, 6) and float(out["mask"].max()) == 255 and out["image"] == "kept"
    assert loader({"image": "kept"}) == {"image": "kept"}
    assert not isinstance(loader, LoadImaged)
