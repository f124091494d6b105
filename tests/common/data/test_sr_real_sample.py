"""Tests of common.data.sr_real_sample: train/val tiles from training images, test tiles from held-out images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import (
    SR_REAL_SAMPLE_TEST_SOURCES,
    SR_TRAINING_SOURCES,
    check_sr_datalist,
    sr_tile_datalist,
    structure_mask,
    write_sr_real_sample,
)


def _source(path: str) -> str:
    return Path(path).stem.split("_", 1)[1]


def test_sample_keeps_training_and_test_images_apart(tmp_path: Path):
    root = tmp_path / "sample"
    write_sr_real_sample(str(root), tile_size=64, counts=(1, 1, 1), seed=3)
    train = sr_tile_datalist(str(root), "train", require_roi=True)
    val = sr_tile_datalist(str(root), "val", require_roi=True)
    test = sr_tile_datalist(str(root), "test", require_roi=True)
    assert len(train) == len(val) == len(SR_TRAINING_SOURCES) and len(test) == len(SR_REAL_SAMPLE_TEST_SOURCES)
    assert {_source(i["image"]) for i in train + val} <= set(SR_TRAINING_SOURCES)
    assert {_source(i["image"]) for i in test} == set(SR_REAL_SAMPLE_TEST_SOURCES)
    assert not set(SR_TRAINING_SOURCES) & set(SR_REAL_SAMPLE_TEST_SOURCES)
    check_sr_datalist(train + val + test, min_size=64)  # RGB, masks of the tile's size
    mask = np.asarray(Image.open(train[0]["roi"]))
    assert set(np.unique(mask)) <= {0, 255} and 0 < (mask > 0).mean() < 1
    again = tmp_path / "again"
    write_sr_real_sample(str(again), tile_size=64, counts=(1, 1, 1), seed=3)
    first, second = (np.asarray(Image.open(Path(r) / "test" / Path(test[0]["image"]).name)) for r in (root, again))
    assert np.array_equal(first, second)  # deterministic


def test_structure_mask_marks_edges_and_not_flat_areas():
    tile = np.zeros((48, 48, 3), dtype=np.uint8)
    assert not structure_mask(tile).any()
    tile[:, 24:] = 200
    mask = structure_mask(tile)
    assert mask[:, 20:28].any() and not mask[:, :10].any() and not mask[:, 40:].any()


def test_bad_arguments_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="tile_size"):
        write_sr_real_sample(str(tmp_path / "x"), tile_size=16)
    with pytest.raises(ValueError, match="counts"):
        write_sr_real_sample(str(tmp_path / "x"), counts=(1, 0, 1))
    assert not (tmp_path / "x").exists()
