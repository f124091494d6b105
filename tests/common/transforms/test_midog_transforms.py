"""LoadRGBTiffd (common/transforms/midog.py)."""

from __future__ import annotations

import numpy as np
import tifffile
import torch

from common.transforms import LoadRGBTiffd


def test_loads_paths_and_leaves_arrays(tmp_path):
    array = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    tifffile.imwrite(tmp_path / "a.tiff", array, photometric="rgb")
    item = LoadRGBTiffd("image")({"image": str(tmp_path / "a.tiff")})
    assert item["image"].shape == (3, 5, 4) and float(item["image"][0, 1, 0]) == float(array[0, 1, 0])
    loaded = torch.zeros(3, 2, 2)
    assert LoadRGBTiffd("image")({"image": loaded})["image"] is loaded
