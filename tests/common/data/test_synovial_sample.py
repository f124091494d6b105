from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import image_mask_pairs, write_synovial_sample


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return write_synovial_sample(tmp_path_factory.mktemp("syn") / "sample", num_images=12)


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.rglob("*.png")))).hexdigest()


def test_layout_and_formats(sample: Path):
    pairs = image_mask_pairs(sample)
    assert len(pairs) == 12 and Path(pairs[0]["image"]).name == "synovial_000.png"
    with Image.open(pairs[0]["image"]) as img, Image.open(pairs[0]["label"]) as mask:
        assert img.mode == "RGB" and img.size == (128, 128) and mask.mode == "L" and mask.size == (128, 128)
        rgb = np.asarray(img)
        assert np.array_equal(rgb[..., 0], rgb[..., 1]), "grey replicated to RGB"
        assert set(np.unique(np.asarray(mask))) == {0, 255}


def test_fluid_is_dark_but_darkness_alone_does_not_segment_it(sample: Path):
    best_dice = []
    for pair in image_mask_pairs(sample):
        grey = np.asarray(Image.open(pair["image"]))[..., 0].astype(float)
        mask = np.asarray(Image.open(pair["label"])) > 0
        assert 0.01 < mask.mean() < 0.3
        assert grey[mask].mean() < 0.6 * grey[~mask].mean()
        dices = [2 * ((grey < t) & mask).sum() / ((grey < t).sum() + mask.sum()) for t in range(10, 120, 5)]
        best_dice.append(max(dices))
    assert np.mean(best_dice) < 0.75, "a global darkness threshold should not solve the task"


def test_deterministic_and_refuses_overwrite(sample: Path, tmp_path: Path):
    again = write_synovial_sample(tmp_path / "s", num_images=12)
    assert _digest(again) == _digest(sample)
    assert _digest(write_synovial_sample(tmp_path / "other", num_images=12, seed=1)) != _digest(sample)
    with pytest.raises(FileExistsError, match="not empty"):
        write_synovial_sample(again, num_images=2)
