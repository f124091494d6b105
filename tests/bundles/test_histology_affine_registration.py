"""Bundle-specific tests of histology_affine_registration: bad input (unreadable image, landmark CSV with missing
columns or non-numeric values, a pair of different dimensionality, blank tissue) stops before anything is written;
MONAI Label's call without landmarks; starting from a local checkpoint without the warm-up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint
from PIL import Image

from common.data import DatasetError
from common.workflows import load_config, run_workflow

BUNDLE = ROOT / "bundles" / "histology_affine_registration"


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    return bundle_runs.sampled(BUNDLE).root


def _damage(case: str, item: dict) -> tuple[str, str]:
    fixed = Path(item["fixed"])
    if case == "unreadable_image":
        fixed.write_bytes(fixed.read_bytes()[:200])
        return str(fixed), "cannot read"
    if case == "landmarks_missing_column":
        path = Path(item["moving_landmarks"])
        path.write_text(",X,Z\n0,1.0,2.0\n")
        return str(path), "lacks column"
    if case == "landmarks_non_numeric":
        path = Path(item["moving_landmarks"])
        path.write_text(",X,Y\n0,1.0,2.0\n1,abc,3.0\n")
        return str(path), "non-numeric"
    if case == "blank_image":
        with Image.open(fixed) as img:
            Image.new("RGB", img.size, (245, 245, 245)).save(fixed)
        return str(fixed), "blank"
    raise AssertionError(case)


CASES = ["unreadable_image", "landmarks_missing_column", "landmarks_non_numeric", "blank_image"]


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
@pytest.mark.parametrize("case", CASES)
def test_bad_pair_stops_before_writing(pristine: Path, tmp_path: Path, case: str, workflow: str):
    copy_sample(pristine, tmp_path)
    root = tmp_path
    if workflow != "train":
        untrained_checkpoint(BUNDLE, root)
    key = "train#dataset#data" if workflow == "train" else "datalist"
    item = load_config(BUNDLE, workflow, bundle_root=str(root)).get_parsed_content(key)[0]
    path, words = _damage(case, item)
    before = top_level_names(root)
    with pytest.raises(DatasetError) as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, warmup_epochs=1, bundle_root=str(root))
    assert path in str(info.value) and words in str(info.value), str(info.value)
    assert_nothing_written(root, before)


@pytest.mark.parametrize("kind", ["tiff_stack", "nifti_volume"])
def test_pair_of_different_dimensionality(pristine: Path, tmp_path: Path, kind: str):
    """A 3D target (multi-page TIFF stack or NIfTI volume) for a 2D RGB source is rejected, naming the target."""
    import nibabel as nib

    copy_sample(pristine, tmp_path)
    root = tmp_path
    untrained_checkpoint(BUNDLE, root)
    source = Path(load_config(BUNDLE, "inference", bundle_root=str(root)).get_parsed_content("datalist")[0]["image"])
    if kind == "tiff_stack":
        target = source.parent / "target_stack.tif"
        with Image.open(source) as img:
            rgb = img.convert("RGB")
            rgb.save(target, save_all=True, append_images=[rgb, rgb])
    else:
        target = source.parent / "target_volume.nii.gz"
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 16)).astype(np.float32), np.eye(4)),
                 str(target))  # fmt: skip
    with pytest.raises(DatasetError) as info:
        run_workflow(BUNDLE, "inference", quiet=True, bundle_root=str(root),
                     datalist=[{"image": str(source), "fixed": str(target)}])  # fmt: skip
    assert str(target) in str(info.value) and "dimensionality" in str(info.value), str(info.value)
    assert not (root / "outputs").exists()


def test_monai_label_call_without_landmarks(pristine: Path, tmp_path: Path):
    copy_sample(pristine, tmp_path)
    root = tmp_path
    untrained_checkpoint(BUNDLE, root)
    item = load_config(BUNDLE, "inference", bundle_root=str(root)).get_parsed_content("datalist")[0]
    out = tmp_path / "label_out"
    parser = load_config(BUNDLE, "inference", bundle_root=str(root))
    postfix = parser.get("result_postfix")
    run_workflow(BUNDLE, "inference", quiet=True, bundle_root=str(root), output_dir=str(out),
                 datalist=[{"image": item["image"], "fixed": item["fixed"]}])  # fmt: skip
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 3, files  # affine JSON, warped image, checkerboard: no landmarks CSV
    result = [p for p in out.iterdir() if p.stem.endswith(postfix)]
    assert len(result) == 1
    with Image.open(result[0]) as warped, Image.open(item["fixed"]) as fixed:
        assert warped.size == fixed.size
    affine = json.loads(next(out.glob("*_affine.json")).read_text())
    m = np.asarray(affine["source_to_target"]) @ np.asarray(affine["target_to_source"])
    assert np.allclose(m, np.eye(3), atol=1e-6)


def test_local_checkpoint_replaces_the_warm_up(pristine: Path, tmp_path: Path):
    copy_sample(pristine, tmp_path)
    root = tmp_path
    ckpt = untrained_checkpoint(BUNDLE, root)
    start = torch.load(ckpt, weights_only=True)
    parser = load_config(BUNDLE, "train", bundle_root=str(root), pretrained_path=str(ckpt), warmup_epochs=0)
    parser.get_parsed_content("load_pretrained")
    network = parser.get_parsed_content("network")
    assert all(torch.equal(network.state_dict()[k], v) for k, v in start.items())
