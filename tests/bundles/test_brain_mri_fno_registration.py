"""Bundle-specific tests of brain_mri_fno_registration.

Registration bad input (unreadable fixed image, a pair of different dimensionality, a blank image), MONAI Label's
image-result call without labels, the 3D switch, only the chosen backbone built.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint

from common.data import DatasetError
from common.workflows import load_config, run_workflow

BUNDLE = ROOT / "bundles" / "brain_mri_fno_registration"
TINY_3D = {"spatial_dims": 3, "hidden_channels": 4, "n_layers": 2, "n_modes": [8, 8, 8]}


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    return bundle_runs.sampled(BUNDLE).root


def _damage(case: str, fixed: Path) -> str:
    if case == "unreadable_fixed_image":
        data = fixed.read_bytes()
        fixed.write_bytes(data[: len(data) // 3])
        return "cannot read"
    if case == "pair_of_different_dimensionality":  # a 3D volume where a 2D slice is expected
        volume = nib.load(str(fixed.parent / "aligned_norm.nii.gz"))
        nib.save(volume, str(fixed))
        return "3D"
    if case == "blank_image":
        image = nib.load(str(fixed))
        nib.save(nib.Nifti1Image(np.zeros(image.shape, np.float32), image.affine), str(fixed))
        return "blank"
    raise AssertionError(case)


@pytest.mark.parametrize("workflow", ["train", "inference"])
@pytest.mark.parametrize("case", ["unreadable_fixed_image", "pair_of_different_dimensionality", "blank_image"])
def test_bad_pair_stops_before_writing(pristine: Path, tmp_path: Path, case: str, workflow: str):
    copy_sample(pristine, tmp_path)
    root = tmp_path
    if workflow == "inference":
        untrained_checkpoint(BUNDLE, root)
    datalist_id = "train#dataset#data" if workflow == "train" else "datalist"
    item = load_config(BUNDLE, workflow, bundle_root=str(root)).get_parsed_content(datalist_id)[0]
    fixed = Path(item["fixed"])
    words = _damage(case, fixed)
    before = top_level_names(root)
    with pytest.raises(DatasetError) as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, bundle_root=str(root))
    message = str(info.value)
    assert str(fixed) in message and words in message, message
    assert_nothing_written(root, before)
    assert not (root / "outputs").exists()


def test_monai_label_call_without_labels_writes_into_output_dir(pristine: Path, tmp_path: Path):
    copy_sample(pristine, tmp_path)
    root = tmp_path
    untrained_checkpoint(BUNDLE, root)
    # any two 2D NIfTI files: here plain H x W copies of two sample slices (neurite's are H x W x 1)
    moving, fixed = tmp_path / "moving.nii.gz", tmp_path / "fixed.nii.gz"
    for subject, target in (("OASIS_OAS1_0003_MR1", moving), ("OASIS_OAS1_0007_MR1", fixed)):
        image = nib.load(str(root / "sample_data" / subject / "slice_norm.nii.gz"))
        nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[..., 0], image.affine), str(target))
    out = tmp_path / "label_app_out"
    run_workflow(BUNDLE, "inference", quiet=True, bundle_root=str(root), output_dir=str(out),
                 datalist=[{"image": str(moving), "fixed": str(fixed)}])  # fmt: skip
    stem = "moving_to_fixed"
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}_ddf.nii.gz", f"{stem}_grid.png", f"{stem}_warped.nii.gz"]
    warped = nib.load(str(out / f"{stem}_warped.nii.gz"))
    assert warped.shape == nib.load(str(moving)).shape
    ddf = nib.load(str(out / f"{stem}_ddf.nii.gz"))
    assert ddf.shape[-1] == 2 and ddf.shape[:2] == warped.shape


@pytest.mark.slow
def test_3d_switch_trains_and_evaluates(pristine: Path, tmp_path: Path):
    copy_sample(pristine, tmp_path)
    root = tmp_path
    overrides = {"bundle_root": str(root), **TINY_3D}
    run_workflow(BUNDLE, "train", quiet=True, max_epochs=1, **overrides)
    assert (root / "models" / "model.pt").is_file()
    run_workflow(BUNDLE, "evaluate", quiet=True, **overrides)
    report = json.loads((root / "eval" / "metrics.json").read_text())
    assert report["spatial_dims"] == 3 and report["num_cases"] >= 1
    assert 0 <= report["metrics"]["dice"] <= 1 and report["metrics"]["folding_percent"] >= 0
    loss = load_config(BUNDLE, "train", **overrides).get_parsed_content("loss")
    assert loss.dice_weight == 0.01 and loss.smooth_weight == 0.01  # the paper's 3D lambda and gamma


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
def test_only_the_chosen_backbone_is_built(monkeypatch, tmp_path: Path, workflow: str):
    """Parsing the config builds the backbone --model chooses, never the other two."""
    import torch

    import common.networks
    import common.networks.fno

    built = []

    def recorder(name):
        def build(*args, **kwargs):
            built.append(name)
            return torch.nn.Conv2d(2, 2, 1)

        return build

    for module in (common.networks, common.networks.fno):
        monkeypatch.setattr(module, "FNOReg", recorder("FNOReg"))
        monkeypatch.setattr(module, "fno_baseline", recorder("fno_baseline"))
    network = load_config(BUNDLE, workflow, bundle_root=str(tmp_path), model="voxelmorph").get_parsed_content("network")
    assert type(network.backbone).__name__ == "VoxelMorphUNet" and built == []
    load_config(BUNDLE, workflow, bundle_root=str(tmp_path), model="fno").get_parsed_content("network")
    assert built == ["fno_baseline"]
