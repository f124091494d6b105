"""The MIDOG-layout sample (common/data/midog_sample.py)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from common.data import SAMPLE_SCANNER_STYLES, midog_datalist, write_midog_sample


def test_sample_is_deterministic_in_midog_layout_with_two_styles(tmp_path):
    a = write_midog_sample(tmp_path / "a", seed=3, source_images=3, target_images=2, image_size=128)
    b = write_midog_sample(tmp_path / "b", seed=3, source_images=3, target_images=2, image_size=128)
    names = sorted(p.name for p in a.iterdir())
    assert names == ["001.tiff", "002.tiff", "003.tiff", "101.tiff", "102.tiff", "MIDOG.json"]
    assert all(np.array_equal(tifffile.imread(a / n), tifffile.imread(b / n)) for n in names if n.endswith(".tiff"))
    source = midog_datalist(a, "source", "all")
    target = midog_datalist(a, "target", "test", source_scanner="hamamatsu_xr", target_scanner="aperio_cs2")
    assert all(len(i["box"]) >= 1 and len(i["hard_negative_box"]) >= 1 for i in source + target)
    src, tgt = tifffile.imread(a / "001.tiff").astype(float), tifffile.imread(a / "101.tiff").astype(float)
    assert src.shape == (128, 128, 3)
    # the two scanners' stain vectors and white balance: different colours of the same kind of tissue
    assert np.abs(src.mean(axis=(0, 1)) - tgt.mean(axis=(0, 1))).max() > 5
    box = source[0]["box"][0].astype(int)
    inside = src[box[1] : box[3], box[0] : box[2]].mean()
    assert inside < src.mean() - 40, "mitotic figures are dark"
    assert SAMPLE_SCANNER_STYLES["aperio_cs2"]["first_id"] == 101
    kept = write_midog_sample(a, seed=4)
    assert kept == a and (a / "003.tiff").is_file(), "an existing sample is kept without overwrite"
    with pytest.raises(ValueError):
        write_midog_sample(tmp_path / "c", source_images=1)
