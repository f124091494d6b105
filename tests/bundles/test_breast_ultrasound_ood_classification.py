"""Bundle-specific tests of breast_ultrasound_ood_classification.

Bad inputs the generic suite does not make (wrong size, constant image, unknown or empty class folder, broken OOD
image), the content of the reports, and the stages after the CNN on a rerun (the ensemble and the thresholds are
re-used when nothing they depend on changed).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint
from PIL import Image

from common.data import DatasetError, DatasetLayoutError, ImageFileError
from common.engines import OOD_METHODS
from common.workflows import load_config, read_metrics, run_workflow

BUNDLE = ROOT / "bundles" / "breast_ultrasound_ood_classification"


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    return bundle_runs.sampled(BUNDLE).root


def _first(folder: Path) -> Path:
    return sorted(p for p in folder.glob("*.png") if "_mask" not in p.name)[0]


def _tiny(data: Path) -> tuple[Path, str]:
    path = _first(data / "benign")
    Image.fromarray(np.full((20, 24), 100, np.uint8)).save(path)
    return path, "below the minimum"


def _constant(data: Path) -> tuple[Path, str]:
    path = _first(data / "malignant")
    Image.fromarray(np.full((180, 180), 37, np.uint8)).save(path)
    return path, "constant"


def _unknown_class(data: Path) -> tuple[Path, str]:
    shutil.copytree(data / "normal", data / "Normal_typo")
    return data / "Normal_typo", "is not a class folder"


def _empty_class(data: Path) -> tuple[Path, str]:
    for p in (data / "benign").iterdir():
        p.unlink()
    return data / "benign", "holds no images"


def _broken_ood(data: Path) -> tuple[Path, str]:
    path = _first(data / "ood" / "cca")
    path.write_bytes(path.read_bytes()[:100])
    return path, "cannot read"


def _rgb_ood(data: Path) -> tuple[Path, str]:
    path = _first(data / "ood" / "mnist")
    with Image.open(path) as img:
        img.convert("RGB").save(path)
    return path, "channel"


CASES = {"tiny_image": _tiny, "constant_image": _constant, "unknown_class_folder": _unknown_class,
         "empty_class_folder": _empty_class, "broken_ood_image": _broken_ood, "rgb_ood_image": _rgb_ood}  # fmt: skip
# which workflows read what: OOD sets are read by evaluate and inference, class folders by all three
WORKFLOWS = {"tiny_image": ["train", "evaluate"], "constant_image": ["train", "inference"],
             "unknown_class_folder": ["train", "evaluate", "inference"], "empty_class_folder": ["train", "evaluate"],
             "broken_ood_image": ["evaluate", "inference"], "rgb_ood_image": ["evaluate"]}  # fmt: skip


@pytest.mark.parametrize(("case", "workflow"), [(c, w) for c, ws in WORKFLOWS.items() for w in ws])
def test_bad_input_stops_before_writing(pristine: Path, tmp_path: Path, case: str, workflow: str):
    data = copy_sample(pristine, tmp_path)
    if case in ("tiny_image", "constant_image"):  # make sure the damaged image is in the workflow's datalist
        target = _first(data / ("benign" if case == "tiny_image" else "malignant"))
        splits = json.loads((data / "splits.json").read_text())
        part = {"train": "train", "evaluate": "test", "inference": "test"}[workflow]
        rel = f"{target.parent.name}/{target.name}"
        for key in splits:
            if rel in splits[key]:
                splits[key].remove(rel)
        splits[part].append(rel)
        (data / "splits.json").write_text(json.dumps(splits))
    if workflow != "train":
        untrained_checkpoint(BUNDLE, tmp_path)
    before = top_level_names(tmp_path)
    path, words = CASES[case](data)
    with pytest.raises(DatasetError) as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    message = str(info.value)
    assert str(path) in message and words in message, message
    if case.endswith("folder"):
        assert isinstance(info.value, DatasetLayoutError)
    else:
        assert isinstance(info.value, ImageFileError)
    assert_nothing_written(tmp_path, before)


@pytest.mark.slow
def test_reports_hold_every_method_and_set(bundle_runs):
    run = bundle_runs.trained(BUNDLE)
    report = read_metrics(run.root / "eval" / "metrics.json")
    sets = {"mnist", "corrupt_pocus", "cca"}
    assert set(report["ood"]) == set(OOD_METHODS)
    for table in report["ood"].values():
        assert set(table) == sets
        for row in table.values():
            assert 0 <= row["auroc_ci_low"] <= row["auroc"] <= row["auroc_ci_high"] <= 1
            assert 0 <= row["fpr95"] <= 1 and 0 <= row["fpr80"] <= 1
    assert report["num_ensemble_members"] == load_config(BUNDLE, "train").get_parsed_content("ensemble_size")
    assert set(report["rejection"]["energy_multilevel"]) == {"leave_out_0", "leave_out_5", "leave_out_20"}
    thresholds = json.loads((run.root / "models" / "ood_thresholds.json").read_text())
    assert set(thresholds["methods"]) == set(OOD_METHODS)
    # the calibration images are the POCUS training images of the sample (splits.json "calibration")
    assert thresholds["num_calibration_images"] == len(
        json.loads((run.root / "sample_data" / "splits.json").read_text())["calibration"]
    )


@pytest.mark.slow
def test_rerun_reuses_the_ensemble_and_the_thresholds(pristine: Path, tmp_path: Path, caplog):
    import logging

    copy_sample(pristine, tmp_path)
    overrides = {"bundle_root": str(tmp_path), "max_epochs": 1, "ensemble_size": 1, "ensemble_min_steps": 0}
    run_workflow(BUNDLE, "train", quiet=True, **overrides)
    models = tmp_path / "models"
    stamps = {p: p.stat().st_mtime_ns for p in [models / "ood_thresholds.json", *(models / "ensemble").iterdir()]}
    manifest = json.loads((models / "ensemble" / "ensemble_manifest.json").read_text())
    assert manifest["size"] == 1 and manifest["data"]["num_items"] > 0
    fitted_on = json.loads((models / "ood_thresholds.json").read_text())["fitted_on"]
    assert fitted_on["ensemble_sha1"] and fitted_on["calibration"]["num_items"] > 0
    with caplog.at_level(logging.INFO):
        run_workflow(BUNDLE, "train", quiet=True, **overrides)  # finished: nothing is trained or refitted
    assert "training already finished" in caplog.text and "re-using the 1-member ensemble" in caplog.text
    assert "already fitted" in caplog.text and "ensemble member 1/1" not in caplog.text
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    caplog.clear()
    with caplog.at_level(logging.INFO):  # another ensemble request: the members are trained again, thresholds refitted
        run_workflow(BUNDLE, "train", quiet=True, **{**overrides, "ensemble_size": 2})
    assert "ensemble member 2/2" in caplog.text and "already fitted" not in caplog.text
    assert json.loads((models / "ood_thresholds.json").read_text())["num_members"] == 2
    assert not list(models.glob(".ensemble*")), "no partial ensemble left behind"
