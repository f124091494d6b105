"""Bundle-specific checks of microscopy_super_resolution (rVTT).

Bad input stops cleanly before anything is written (grey tile, tile smaller than the training patch, bad scale, ROI
mask of another size), and inference on an LR image as given writes the SR image and the comparison figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint
from PIL import Image

from common.data import DatasetError
from common.workflows import load_config, run_workflow

BUNDLE = ROOT / "bundles" / "microscopy_super_resolution"


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    return bundle_runs.sampled(BUNDLE).root


def _prepare(pristine: Path, tmp_path: Path, workflow: str) -> tuple[Path, set[str]]:
    sample = copy_sample(pristine, tmp_path)
    if workflow != "train":
        untrained_checkpoint(BUNDLE, tmp_path)
    return sample, top_level_names(tmp_path)


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
def test_grey_tile_is_rejected(pristine, tmp_path, workflow):
    sample, before = _prepare(pristine, tmp_path, workflow)
    tile = sorted((sample / ("train" if workflow == "train" else "test")).glob("*.png"))[0]
    with Image.open(tile) as img:
        img.convert("L").save(tile)
    with pytest.raises(DatasetError, match="expected an RGB image") as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert str(tile) in str(info.value)
    assert_nothing_written(tmp_path, before)


@pytest.mark.parametrize(("workflow", "size"), [("train", 48), ("evaluate", 40)])
def test_tile_smaller_than_the_patch_is_rejected(pristine, tmp_path, workflow, size):
    sample, before = _prepare(pristine, tmp_path, workflow)
    tile = sorted((sample / ("train" if workflow == "train" else "test")).glob("*.png"))[-1]
    with Image.open(tile) as img:
        img.crop((0, 0, size, size)).save(tile)
    with pytest.raises(DatasetError, match="smaller than the required") as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert str(tile) in str(info.value)
    assert_nothing_written(tmp_path, before)


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
@pytest.mark.parametrize(("scale", "words"), [(1, "> 1"), (0.5, "> 1"), ("four", "number"), (5, "2s and 3s")])
def test_bad_scale_is_rejected(pristine, tmp_path, workflow, scale, words):
    _, before = _prepare(pristine, tmp_path, workflow)
    with pytest.raises(ValueError, match=words) as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, scale=scale, bundle_root=str(tmp_path))
    assert repr(scale) in str(info.value)
    assert_nothing_written(tmp_path, before)


def test_roi_mask_of_another_size_is_rejected(pristine, tmp_path):
    sample, before = _prepare(pristine, tmp_path, "train")
    roi = sorted((sample / "train_roi").glob("*.png"))[2]
    with Image.open(roi) as img:
        img.crop((0, 0, img.width - 8, img.height)).save(roi)
    with pytest.raises(DatasetError, match="ROI mask is") as info:
        run_workflow(BUNDLE, "train", quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert str(roi) in str(info.value)
    assert_nothing_written(tmp_path, before)


def test_missing_roi_mask_is_rejected_for_training(pristine, tmp_path):
    sample, before = _prepare(pristine, tmp_path, "train")
    roi = sorted((sample / "train_roi").glob("*.png"))[0]
    roi.unlink()
    with pytest.raises(DatasetError, match="ROI mask of") as info:
        run_workflow(BUNDLE, "train", quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert str(roi) in str(info.value)
    assert_nothing_written(tmp_path, before)


@pytest.mark.slow
@pytest.mark.parametrize("simulate_lr", [False, True])
def test_inference_writes_sr_and_figure(bundle_runs, tmp_path, simulate_lr):
    run = bundle_runs.trained(BUNDLE)
    lr_path = tmp_path / "small.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(lr_path)
    out = tmp_path / "out"
    run_workflow(BUNDLE, "inference", quiet=True, datalist=[{"image": str(lr_path)}], output_dir=str(out),
                 simulate_lr=simulate_lr, **run.overrides)  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["small_comparison.png", "small_sr.png"]
    sr = np.asarray(Image.open(out / "small_sr.png"))
    scale = load_config(BUNDLE, "inference", **run.overrides).get_parsed_content("scale")  # the trained scale
    expected = (40 * scale, 36 * scale) if not simulate_lr else (40 // scale * scale, 36 // scale * scale)
    assert sr.shape == (*expected, 3)
    figure = np.asarray(Image.open(out / "small_comparison.png"))
    panels = 4 if simulate_lr else 3  # HR panel only when the HR image is known
    assert figure.shape[1] == panels * expected[1] + (panels + 1) * 4  # panels side by side, 4-pixel gaps
