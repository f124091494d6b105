"""Bundle-specific tests of colon_ct_segmentation.

Bad input the generic suite cannot make (a DICOM series with inconsistent slice spacing, missing slices or no HU
rescale tags, a volume whose lowest slices hold no air, a mask of another shape), a DICOM series through inference,
and the evaluation report (network, MRF initial mask and trivial baseline side by side).
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint

from common.colon_ct_ops import RectumNotFoundError
from common.data import DatasetError, ImageFileError, read_ct_volume, write_ct_dicom_series
from common.workflows import load_config, read_metrics, run_workflow

BUNDLE = ROOT / "bundles" / "colon_ct_segmentation"


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    return bundle_runs.sampled(BUNDLE).root


def _replace_first_training_volume(root: Path, make) -> Path:
    """Swap the first training item of dataset.json for what ``make(hu, folder)`` writes; return its path."""
    item = load_config(BUNDLE, "train", bundle_root=str(root)).get_parsed_content("train#dataset#data")[0]
    hu, _ = read_ct_volume(item["image"])
    path = make(hu, root / "sample_data" / "imagesTr" / "series")
    listing = json.loads((root / "sample_data" / "dataset.json").read_text())
    for entry in listing["training"]:
        if str(root / "sample_data" / entry["image"]) == item["image"]:
            entry["image"] = str(path.relative_to(root / "sample_data"))
    (root / "sample_data" / "dataset.json").write_text(json.dumps(listing))
    return path


def _gap(hu, folder):
    positions = [8.0 * i for i in range(hu.shape[2])]
    positions[10:] = [p + 8.0 for p in positions[10:]]  # one slice left out
    return write_ct_dicom_series(folder, hu, (6.0, 6.0, 8.0), positions)


def _uneven(hu, folder):
    positions = [8.0 * i for i in range(hu.shape[2])]
    positions[10:] = [p + 3.0 for p in positions[10:]]
    return write_ct_dicom_series(folder, hu, (6.0, 6.0, 8.0), positions)


def _no_rescale(hu, folder):
    return write_ct_dicom_series(folder, hu, (6.0, 6.0, 8.0), rescale=False)


def _no_rectum(hu, folder):
    filled = hu.copy()
    filled[..., :8][filled[..., :8] < -500] = 40.0  # no air in the lowest slices (outside air too: a cropped scan)
    path = folder.with_name("no_rectum.nii.gz")
    nib.save(nib.Nifti1Image(filled, np.diag([6.0, 6.0, 8.0, 1.0])), path)
    return path


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (_gap, ImageFileError, "missing slices"),
        (_uneven, ImageFileError, "inconsistent slice spacing"),
        (_no_rescale, ImageFileError, "no HU rescale tags"),
        (_no_rectum, RectumNotFoundError, "rectum not found"),
    ],
    ids=["missing_slices", "uneven_spacing", "no_rescale_tags", "no_rectum"],
)
def test_bad_volume_stops_training_before_anything_is_written(pristine, tmp_path: Path, make, error, words):
    copy_sample(pristine, tmp_path)
    path = _replace_first_training_volume(tmp_path, make)
    before = top_level_names(tmp_path)
    with pytest.raises(error, match=words) as info:
        run_workflow(BUNDLE, "train", quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert isinstance(info.value, DatasetError)
    assert str(path.parent if path.suffix == ".dcm" else path) in str(info.value) or str(path) in str(info.value)
    assert_nothing_written(tmp_path, before)


def test_mask_of_another_shape_stops_evaluation(pristine, tmp_path: Path):
    copy_sample(pristine, tmp_path)
    untrained_checkpoint(BUNDLE, tmp_path)
    item = load_config(BUNDLE, "evaluate", bundle_root=str(tmp_path)).get_parsed_content("datalist")[0]
    mask = nib.load(item["label"])
    nib.save(nib.Nifti1Image(np.asarray(mask.dataobj)[:, :, :-2], mask.affine), item["label"])
    before = top_level_names(tmp_path)
    with pytest.raises(ImageFileError, match="differs") as info:
        run_workflow(BUNDLE, "evaluate", quiet=True, bundle_root=str(tmp_path))
    assert item["label"] in str(info.value)
    assert_nothing_written(tmp_path, before)


@pytest.mark.slow
def test_report_scores_network_mrf_and_trivial_baseline_side_by_side(bundle_runs):
    run = bundle_runs.trained(BUNDLE)
    report = read_metrics(run.root / "eval" / "metrics.json")
    metrics = report["metrics"]
    assert {"dice", "jaccard", "mrf_dice", "mrf_jaccard", "trivial_dice"} <= set(metrics)
    # Jaccard <= Dice per case, both from the same masks
    for case in report["cases"].values():
        assert case["jaccard"]["colon"] <= case["dice"]["colon"] + 1e-6
    assert metrics["dice"] > metrics["trivial_dice"] + 0.5  # a colon of ~2% of the voxels: trivial Dice ~0.05
    assert metrics["mrf_dice"] > 0.8


@pytest.mark.slow
def test_dicom_series_input_gives_a_mask_on_its_grid(bundle_runs, tmp_path: Path):
    run = bundle_runs.trained(BUNDLE)
    item = load_config(BUNDLE, "inference", **run.overrides).get_parsed_content("datalist")[0]
    hu, _ = read_ct_volume(item["image"])
    series = write_ct_dicom_series(tmp_path / "ctc_series", hu, (6.0, 6.0, 8.0))
    out = tmp_path / "out"
    run_workflow(
        BUNDLE, "inference", quiet=True, datalist=[{"image": str(series)}], output_dir=str(out), **run.overrides
    )
    written = sorted(p.name for p in out.iterdir())
    assert written == ["ctc_series_seg.nii.gz", "ctc_series_seg_montage.png"]
    mask = nib.load(out / "ctc_series_seg.nii.gz")
    assert mask.shape == hu.shape and 0.005 < np.asarray(mask.dataobj).mean() < 0.1
