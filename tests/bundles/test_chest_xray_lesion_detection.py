"""Bundle-specific tests of chest_xray_lesion_detection.

Bad input the generic cases cannot express (a DICOM without pixel data, an RSNA row whose box leaves the image, a
patientId without its DICOM, a CheXpert CSV without its columns) stops before anything is written; inference writes
the JSON, overlay, CAWE map and RSNA submission in the file's pixels; Table 1's rows and the CAWE source are switches
that refuse unknown values; the trained model.pt holds the CAWE classifier and the colorizer.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint
from PIL import Image

from common.config import root_cause
from common.data import DatasetError
from common.workflows import load_config, run_workflow

BUNDLE = ROOT / "bundles" / "chest_xray_lesion_detection"


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    """Root holding the bundle's generated sample."""
    return bundle_runs.sampled(BUNDLE).root


def _first_image(root: Path, workflow: str) -> Path:
    datalist = "train#dataset#data" if workflow == "train" else "datalist"
    return Path(load_config(BUNDLE, workflow, bundle_root=str(root)).get_parsed_content(datalist)[0]["image"])


def _rewrite(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _damage(case: str, image: Path, root: Path) -> tuple[str, str]:
    """Apply one kind of damage; return (what the error must name, words it must contain)."""
    labels = root / "sample_data" / "stage_2_train_labels.csv"
    if case == "no_pixel_data":
        ds = pydicom.dcmread(image)
        del ds.PixelData
        ds.save_as(image)
        return str(image), "has no PixelData"
    if case == "box_outside_image":
        rows = list(csv.reader(labels.open()))
        rows.append([image.stem, "10", "10", "5000", "60", "1"])
        _rewrite(labels, rows)
        return str(labels), "lies outside the image"
    if case == "patient_without_image":
        rows = list(csv.reader(labels.open()))
        rows.append(["ghost-patient", "", "", "", "", "0"])
        _rewrite(labels, rows)
        return str(labels), "patientId ghost-patient has no image"
    if case == "chexpert_missing_columns":
        path = root / "sample_data" / "CheXpert-v1.0-small" / "train.csv"
        rows = [row[:5] + row[8:] for row in csv.reader(path.open())]  # drop No Finding..Cardiomegaly
        _rewrite(path, rows)
        return str(path), "lacks the column(s) ['No Finding', 'Enlarged Cardiomediastinum', 'Cardiomegaly']"
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "workflow"),
    [("no_pixel_data", "train"), ("no_pixel_data", "evaluate"), ("no_pixel_data", "inference"),
     ("box_outside_image", "train"), ("box_outside_image", "evaluate"),
     ("patient_without_image", "train"), ("patient_without_image", "inference"),
     ("chexpert_missing_columns", "train")],
)  # fmt: skip
def test_bad_input_stops_before_writing(pristine: Path, tmp_path: Path, case: str, workflow: str):
    copy_sample(pristine, tmp_path)
    if workflow != "train":
        untrained_checkpoint(BUNDLE, tmp_path)
    image = _first_image(tmp_path, workflow)
    before = top_level_names(tmp_path)
    named, words = _damage(case, image, tmp_path)
    with pytest.raises(DatasetError) as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert named in str(info.value) and words in str(info.value), str(info.value)
    assert_nothing_written(tmp_path, before)


def test_inference_writes_boxes_overlay_cawe_map_and_submission(pristine: Path, tmp_path: Path):
    copy_sample(pristine, tmp_path)
    untrained_checkpoint(BUNDLE, tmp_path)
    image = _first_image(tmp_path, "inference")
    run_workflow(BUNDLE, "inference", quiet=True, bundle_root=str(tmp_path), datalist=[{"image": str(image)}])
    out = tmp_path / "outputs"
    record = json.loads((out / f"{image.stem}.json").read_text())
    assert record["box_mode"] == "xyxy" and len(record["box"]) == len(record["score"])
    ds = pydicom.dcmread(image, stop_before_pixels=True)
    boxes = np.asarray(record["box"]).reshape(-1, 4)
    assert (boxes[:, 0::2] >= -1).all() and (boxes[:, 0::2] <= ds.Columns + 1).all()
    with Image.open(out / f"{image.stem}_overlay.png") as overlay:
        assert overlay.size == (ds.Columns, ds.Rows)
    with Image.open(out / f"{image.stem}_cawe.png") as cawe:
        assert cawe.mode == "L"
    rows = list(csv.reader((out / "submission.csv").open()))
    assert rows[0] == ["patientId", "PredictionString"] and rows[1][0] == image.stem
    strong = [s for s in record["score"] if s >= 0.5]
    assert len(rows[1][1].split()) == 5 * len(strong)
    assert (out / "detections.csv").is_file()


@pytest.mark.parametrize(
    ("switch", "value", "config_id", "message"),
    [("enhancement", "medga", "network_def", "unknown enhancement"),
     ("cawe_source", "mimic", "cawe_classes", "cawe_source must be one of"),
     ("networks", "huge", "net", "networks must be one of")],
)  # fmt: skip
def test_unknown_switch_values_are_refused(tmp_path: Path, switch: str, value: str, config_id: str, message: str):
    with pytest.raises(RuntimeError) as info:  # MONAI wraps what a config expression raises
        load_config(BUNDLE, "train", bundle_root=str(tmp_path), **{switch: value}).get_parsed_content(config_id)
    cause = root_cause(info.value)
    assert isinstance(cause, ValueError) and message in str(cause)


def test_cawe_sources_and_paper_networks(pristine: Path):
    intra = load_config(BUNDLE, "train", bundle_root=str(pristine), cawe_source="intra")
    assert intra.get_parsed_content("cawe_classes") == 1
    assert all(i["cawe_label"].shape == (1,) for i in intra.get_parsed_content("cawe_train_data"))
    inter = load_config(BUNDLE, "train", bundle_root=str(pristine))
    assert inter.get_parsed_content("cawe_classes") == 14
    assert "CheXpert-v1.0-small" in inter.get_parsed_content("cawe_train_data")[0]["image"]
    paper = load_config(BUNDLE, "train", bundle_root=str(pristine), networks="paper", image_size=[512, 512])
    spec = paper.get_parsed_content("network_spec")
    assert spec.keywords["backbone"] == "resnet50" and spec.keywords["classifier"] == "resnet50"
    assert spec.keywords["colorizer_depth"] == 34 and paper.get_parsed_content("anchor_sizes")[0] == [32, 48]


@pytest.mark.slow
def test_trained_model_holds_the_stage_networks(bundle_runs):
    run = bundle_runs.trained(BUNDLE)
    state = torch.load(run.root / "models" / "model.pt", map_location="cpu", weights_only=True)
    classifier = torch.load(run.root / "models" / "cawe_classifier.pt", map_location="cpu", weights_only=False)
    colorizer = torch.load(run.root / "models" / "colorizer.pt", map_location="cpu", weights_only=False)
    for prefix, stage in (("classifier.", classifier), ("colorizer.", colorizer)):
        for key, value in stage["state_dict"].items():
            assert torch.equal(state[prefix + key], value), f"{prefix}{key} is not the stage's weight"
    assert classifier["settings"]["cawe_source"] == "inter"
    report = json.loads((run.root / "eval" / "metrics.json").read_text())
    assert {"tpr_at_1_fppi", "tpr_at_2_fppi", "tpr_at_3_fppi", "tpr_at_4_fppi", "map"} <= set(report["metrics"])
    assert (run.root / "eval" / "froc.png").is_file()
