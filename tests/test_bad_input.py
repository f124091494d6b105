"""Bad input, for every bundle.

Each case stops the workflow with one error that names the file and the problem, before anything is written
(no checkpoint, log, metrics or prediction folder appears).

The damage is generic: it is applied to the first item of the workflow's own datalist, so new bundles are covered
by the same cases. NaN values apply to formats that can hold them (NIfTI); PNG cannot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from bundle_helpers import BUNDLE_IDS, BUNDLES, OUTPUT_DIRS, ROOT, copy_sample, metadata, untrained_checkpoint
from PIL import Image

from common.data import DatasetError
from common.workflows import load_config, run_workflow

CASES = ["truncated_image", "label_shape_mismatch", "wrong_channel_count", "nan_volume", "empty_dataset"]


@pytest.fixture(scope="module", params=BUNDLES, ids=BUNDLE_IDS)
def generated(request, bundle_runs):
    """(bundle, root holding its pristine sample); cases copy the sample before damaging it."""
    run = bundle_runs.sampled(request.param)
    return run.bundle, run.root


def _is_nifti(path: Path) -> bool:
    return path.name.endswith((".nii", ".nii.gz"))


def _damage(case: str, item: dict, dataset_dir: Path) -> tuple[str, str]:
    """Apply one kind of damage; return (path the error must name, words the error must contain)."""
    image = Path(item["image"])
    label = Path(item["label"]) if isinstance(item.get("label"), str | Path) else None
    if case == "label_shape_mismatch" and (label is None or not label.is_file() or label == image):
        pytest.skip("this workflow's items carry no label file")
    if case == "truncated_image":
        data = image.read_bytes()
        image.write_bytes(data[: len(data) // 2])
        return str(image), "cannot read"
    if case == "label_shape_mismatch":
        if _is_nifti(label):
            vol = nib.load(str(label))
            nib.save(nib.Nifti1Image(np.asarray(vol.dataobj)[:-4], vol.affine), str(label))
        else:
            with Image.open(label) as img:
                img.crop((0, 0, img.width - 8, img.height)).save(label)
        return str(label), "differs"
    if case == "wrong_channel_count":
        if image.suffix.lower() in (".dcm", ".dicom"):
            pytest.skip("a DICOM's channels are its photometric interpretation (the bundle's own tests cover RGB)")
        if _is_nifti(image):
            vol = nib.load(str(image))
            data = np.asarray(vol.dataobj)
            nib.save(nib.Nifti1Image(np.stack([data, data], -1), vol.affine), str(image))
        else:
            with Image.open(image) as img:  # grey where colour is expected and colour where grey is
                img.convert("L" if img.mode in ("RGB", "RGBA") else "RGB").save(image)
        return str(image), "channel"
    if case == "nan_volume":
        if not _is_nifti(image):
            pytest.skip("only NIfTI images here can hold NaN (PNG and integer DICOM cannot)")
        vol = nib.load(str(image))
        nib.save(nib.Nifti1Image(np.full(vol.shape, np.nan, np.float32), vol.affine), str(image))
        return str(image), "NaN"
    if case == "empty_dataset":
        shutil.rmtree(dataset_dir)
        dataset_dir.mkdir()
        return str(dataset_dir), ""
    raise AssertionError(case)


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
@pytest.mark.parametrize("case", CASES)
def test_bad_input_stops_cleanly(generated, case: str, workflow: str, tmp_path: Path):
    bundle, pristine = generated
    dataset_dir = copy_sample(pristine, tmp_path)
    overrides = {"bundle_root": str(tmp_path)}
    if workflow != "train":
        untrained_checkpoint(bundle, tmp_path)
    datalist_id = "train#dataset#data" if workflow == "train" else "datalist"
    item = load_config(bundle, workflow, **overrides).get_parsed_content(datalist_id)[0]
    if workflow == "inference" and case == "label_shape_mismatch":
        pytest.skip("inference reads no labels")
    before = {p.name for p in tmp_path.iterdir()}
    path, words = _damage(case, item, dataset_dir)
    with pytest.raises(DatasetError) as info:
        run_workflow(bundle, workflow, quiet=True, max_epochs=1, **overrides)
    message = str(info.value)
    assert path in message and words in message, message
    created = {p.name for p in tmp_path.iterdir()} - before
    assert not created & set(OUTPUT_DIRS), f"{workflow} left {created} behind after a bad-input error"


@pytest.mark.cli
def test_cli_reports_bad_file_by_name(generated, tmp_path: Path):
    """Through `python -m monai.bundle run`, the user's terminal shows the file and the problem."""
    bundle, pristine = generated
    dataset_dir = copy_sample(pristine, tmp_path)
    item = load_config(bundle, "train", bundle_root=str(tmp_path)).get_parsed_content("train#dataset#data")[0]
    path, words = _damage("truncated_image", item, dataset_dir)
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(bundle / "configs" / "train.yaml"),
           "--bundle_root", str(tmp_path), "--max_epochs", "1"]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode != 0
    assert f"{path}: cannot read image" in result.stderr, result.stderr[-2000:]
    assert not any((tmp_path / d).exists() for d in OUTPUT_DIRS)
    assert metadata(bundle)  # the bundle itself is untouched
