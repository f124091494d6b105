"""Bundle-specific tests of histology_affine_registration.

Bad input (unreadable image, landmark CSV with missing columns or non-numeric values, a pair of different
dimensionality, blank tissue) stops before anything is written; the dataset CSV's problems (no pair of the evaluated
status, no index column, a deleted landmark file, a missing landmark column) are named; MONAI Label's call without
landmarks; starting from a local checkpoint without the warm-up; the warm-up's own resumable checkpoints.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint
from PIL import Image

from common.data import DatasetError, DatasetLayoutError, ImageFileError
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


# ---- the dataset CSV ----------------------------------------------------------------------------------------------


def _edit_table(sample: Path, edit) -> Path:
    """Rewrite ``sample/dataset.csv`` as ``edit(rows)`` (rows as lists of cells, header first)."""
    table = sample / "dataset.csv"
    with table.open(newline="") as f:
        rows = list(csv.reader(f))
    with table.open("w", newline="") as f:
        csv.writer(f).writerows(edit(rows))
    return table


def _evaluate_refuses(root: Path, error: type[Exception]) -> str:
    before = top_level_names(root)
    with pytest.raises(error) as info:
        run_workflow(BUNDLE, "evaluate", quiet=True, bundle_root=str(root))
    assert_nothing_written(root, before)
    return str(info.value)


def test_evaluation_without_evaluation_pairs_says_which_status_to_pass(pristine: Path, tmp_path: Path):
    """All pairs marked `training`: the default `--status evaluation` stops and says exactly what to pass.

    (A dataset whose landmarks are all public, instead of finding nothing to score.)
    """
    sample = copy_sample(pristine, tmp_path)
    untrained_checkpoint(BUNDLE, tmp_path)

    def all_training(rows):
        status = rows[0].index("status")
        return [rows[0]] + [[*r[:status], "training", *r[status + 1 :]] for r in rows[1:]]

    table = _edit_table(sample, all_training)
    message = _evaluate_refuses(tmp_path, DatasetLayoutError)
    assert str(table) in message and "--status training" in message, message
    datalist = load_config(BUNDLE, "evaluate", bundle_root=str(tmp_path), status="training").get_parsed_content(
        "datalist"
    )
    assert len(datalist) == 12  # what the message advises works


def test_dataset_csv_without_the_index_column(pristine: Path, tmp_path: Path):
    """ANHIR's leading unnamed index column is optional: columns are read by name.

    A header that lost its empty index cell while the rows kept their index would shift every value: it is rejected,
    naming the file and line.
    """
    sample = copy_sample(pristine, tmp_path)
    expected = load_config(BUNDLE, "evaluate", bundle_root=str(tmp_path)).get_parsed_content("datalist")
    _edit_table(sample, lambda rows: [r[1:] for r in rows])
    assert load_config(BUNDLE, "evaluate", bundle_root=str(tmp_path)).get_parsed_content("datalist") == expected
    shifted = tmp_path / "shifted"
    table = _edit_table(copy_sample(pristine, shifted), lambda rows: [rows[0][1:]] + rows[1:])
    untrained_checkpoint(BUNDLE, shifted)
    message = _evaluate_refuses(shifted, DatasetLayoutError)
    assert str(table) in message and "line 2 has 8 values for the 7 columns" in message, message


def test_evaluation_with_a_deleted_target_landmark_file_names_it(pristine: Path, tmp_path: Path):
    """A listed pair that cannot be scored is an error naming its file, not a report over fewer cases."""
    copy_sample(pristine, tmp_path)
    untrained_checkpoint(BUNDLE, tmp_path)
    item = load_config(BUNDLE, "evaluate", bundle_root=str(tmp_path)).get_parsed_content("datalist")[1]
    Path(item["fixed_landmarks"]).unlink()
    message = _evaluate_refuses(tmp_path, ImageFileError)
    assert item["fixed_landmarks"] in message and "does not exist" in message, message
    assert not (tmp_path / "eval").exists()


def test_dataset_csv_without_the_target_landmarks_column_names_it(pristine: Path, tmp_path: Path):
    sample = copy_sample(pristine, tmp_path)
    untrained_checkpoint(BUNDLE, tmp_path)

    def drop_column(rows):
        column = rows[0].index("Target landmarks")
        return [r[:column] + r[column + 1 :] for r in rows]

    table = _edit_table(sample, drop_column)
    message = _evaluate_refuses(tmp_path, DatasetLayoutError)
    assert str(table) in message and "'Target landmarks'" in message, message


# ---- the warm-up's own checkpoints --------------------------------------------------------------------------------


@pytest.mark.slow
def test_warm_up_resumes_and_is_not_repeated(pristine: Path, tmp_path: Path, caplog):
    """The warm-up keeps its own resumable state in cache/warmup/; models/ holds only the fine-tuning's files.

    A rerun with more warm-up epochs continues the warm-up; a rerun of a finished run repeats neither stage.
    """
    copy_sample(pristine, tmp_path)
    overrides = {"bundle_root": str(tmp_path), "max_epochs": 1, "train_size": 96}
    run_workflow(BUNDLE, "train", quiet=True, warmup_epochs=1, **overrides)
    warmup = tmp_path / "cache" / "warmup"
    assert {p.name for p in warmup.iterdir()} == {"warmup.pt", "training_plan.json", "training_state.pt"}
    assert {p.name for p in (tmp_path / "models").iterdir()} == {"model.pt", "training_plan.json", "training_state.pt"}
    with caplog.at_level(logging.INFO, logger="common.engines.training"):
        run_workflow(BUNDLE, "train", quiet=True, warmup_epochs=2, **overrides)
    assert f"resuming from {warmup / 'training_state.pt'} after epoch 1 of 2" in caplog.text, caplog.text[-2000:]
    assert json.loads((warmup / "training_plan.json").read_text())["epochs_completed"] == 2
    stamps = {p: p.stat().st_mtime_ns for p in (warmup / "warmup.pt", tmp_path / "models" / "model.pt")}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="common.engines.training"):
        run_workflow(BUNDLE, "train", quiet=True, warmup_epochs=2, **overrides)
    assert caplog.text.count("training already finished") == 2, caplog.text[-2000:]
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items()), "a finished stage was repeated"
