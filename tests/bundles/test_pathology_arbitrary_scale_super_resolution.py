"""Bundle-specific checks of pathology_arbitrary_scale_super_resolution.

Bad input stops cleanly (grey tile, tile smaller than the training crop, bad scale) and inference works at a
non-integer scale on an LR image as given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint
from PIL import Image

from common.data import DatasetError
from common.workflows import run_workflow

BUNDLE = ROOT / "bundles" / "pathology_arbitrary_scale_super_resolution"


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    return bundle_runs.sampled(BUNDLE).root


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
def test_grey_tile_is_rejected(pristine, tmp_path, workflow):
    sample = copy_sample(pristine, tmp_path)
    split = {"train": "train", "evaluate": "test", "inference": "test"}[workflow]
    tile = sorted((sample / split).glob("*.png"))[0]
    with Image.open(tile) as img:
        img.convert("L").save(tile)
    if workflow != "train":
        untrained_checkpoint(BUNDLE, tmp_path)
    before = top_level_names(tmp_path)
    with pytest.raises(DatasetError, match="channel") as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert str(tile) in str(info.value)
    assert_nothing_written(tmp_path, before)


@pytest.mark.parametrize(("workflow", "size"), [("train", 150), ("evaluate", 40)])
def test_tile_smaller_than_the_patch_is_rejected(pristine, tmp_path, workflow, size):
    sample = copy_sample(pristine, tmp_path)
    tile = sorted((sample / ("train" if workflow == "train" else "test")).glob("*.png"))[-1]
    with Image.open(tile) as img:
        img.crop((0, 0, size, size)).save(tile)
    if workflow != "train":
        untrained_checkpoint(BUNDLE, tmp_path)
    before = top_level_names(tmp_path)
    with pytest.raises(DatasetError, match="smaller than the required") as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert str(tile) in str(info.value)
    assert_nothing_written(tmp_path, before)


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
@pytest.mark.parametrize("scale", [1.0, 0.5, "abc"])
def test_bad_scale_is_rejected(pristine, tmp_path, workflow, scale):
    copy_sample(pristine, tmp_path)
    if workflow != "train":
        untrained_checkpoint(BUNDLE, tmp_path)
    before = top_level_names(tmp_path)
    with pytest.raises(ValueError, match="scale must be a number > 1"):
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, bundle_root=str(tmp_path), scale=scale)
    assert_nothing_written(tmp_path, before)


def test_inference_at_a_non_integer_scale_on_an_lr_image(tmp_path):
    lr = tmp_path / "lr_tile.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(lr)
    out = tmp_path / "out"
    run_workflow(BUNDLE, "inference", quiet=True, bundle_root=str(tmp_path), load_pretrain=False, scale=3.5,
                 datalist=[{"image": str(lr)}], output_dir=str(out))  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["lr_tile_comparison.png", "lr_tile_sr.png"]
    with Image.open(out / "lr_tile_sr.png") as sr:
        assert sr.size == (84, 70) and sr.mode == "RGB"  # round(24 * 3.5) x round(20 * 3.5)
