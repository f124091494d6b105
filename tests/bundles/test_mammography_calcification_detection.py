"""Bundle-specific tests of mammography_calcification_detection.

Bad input the generic cases cannot express (a DICOM without pixel data, an RGB DICOM, an image without breast
tissue, a box outside its image in boxes.csv) stops before anything is written; the INbreast layout (DICOM + XML
ROIs turned into cluster boxes) and the authors' 16-bit PNG layout read through the bundle's own datalist; the Swin
network exports by tracing and the traced network detects what the eager one does through the sliding window; the
ResNet-50 switch trains, evaluates and scripts.
"""

from __future__ import annotations

import csv
import json
import plistlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint
from PIL import Image

from common.config import root_cause
from common.data import DatasetError, DatasetLayoutError, write_mammogram_dicom
from common.workflows import load_config, run_workflow

BUNDLE = ROOT / "bundles" / "mammography_calcification_detection"


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    """Root holding the bundle's generated sample."""
    return bundle_runs.sampled(BUNDLE).root


def _first_image(root: Path, workflow: str) -> Path:
    datalist = "train#dataset#data" if workflow == "train" else "datalist"
    return Path(load_config(BUNDLE, workflow, bundle_root=str(root)).get_parsed_content(datalist)[0]["image"])


def _damage(case: str, image: Path, root: Path) -> tuple[str, str]:
    """Apply one kind of damage; return (what the error must name, words it must contain)."""
    if case == "no_pixel_data":
        ds = pydicom.dcmread(image)
        del ds.PixelData
        ds.save_as(image)
        return str(image), "has no PixelData"
    if case == "rgb_dicom":
        ds = pydicom.dcmread(image)
        grey = ds.pixel_array.astype(np.uint8)
        ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "RGB", 3, 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = np.stack([grey] * 3, -1).tobytes()
        ds.save_as(image)
        return str(image), "unsupported PhotometricInterpretation 'RGB'"
    if case == "no_breast_tissue":
        ds = pydicom.dcmread(image)
        ds.PixelData = np.zeros((ds.Rows, ds.Columns), np.uint16).tobytes()
        ds.save_as(image)
        return str(image), "no breast tissue"
    if case == "box_outside_image":
        path = root / "sample_data" / "boxes.csv"
        rows = list(csv.reader(path.open()))
        patient = next(r[6] for r in rows[1:] if r[0] == image.name)
        rows.append([image.name, "10", "10", "5000", "60", "0", patient])
        with path.open("w", newline="") as f:
            csv.writer(f).writerows(rows)
        return str(path), f"({image.name}): box [10, 10, 5000, 60] lies outside the image"
    raise AssertionError(case)


CASES = ["no_pixel_data", "rgb_dicom", "no_breast_tissue", "box_outside_image"]


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
@pytest.mark.parametrize("case", CASES)
def test_bad_mammogram_stops_before_writing(pristine: Path, tmp_path: Path, case: str, workflow: str):
    copy_sample(pristine, tmp_path)
    if workflow != "train":
        untrained_checkpoint(BUNDLE, tmp_path)
    image = _first_image(tmp_path, workflow)
    if case == "box_outside_image" and workflow == "inference":
        pytest.skip("inference reads no boxes")
    before = top_level_names(tmp_path)
    named, words = _damage(case, image, tmp_path)
    with pytest.raises(DatasetError) as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert named in str(info.value) and words in str(info.value), str(info.value)
    assert_nothing_written(tmp_path, before)


def _inbreast(root: Path) -> Path:
    """A two-image INbreast release: one image with a 4-calcification cluster and a far single speck, one normal."""
    release = root / "INbreast Release 1.0"
    (release / "AllDICOMs").mkdir(parents=True)
    (release / "AllXML").mkdir()
    rng = np.random.default_rng(0)
    for file_id, side in (("20586908", "R"), ("20586934", "L")):
        image = np.zeros((300, 200), np.uint16)
        cols = slice(0, 150) if side == "L" else slice(50, 200)
        image[20:280, cols] = 2000 + rng.integers(0, 50, (260, 150))
        write_mammogram_dicom(release / "AllDICOMs" / f"{file_id}_6c613a14b80a8591_MG_{side}_CC_ANON.dcm",
                              image, "6c613a14b80a8591", side, "CC", bits_stored=12)  # fmt: skip
    points = [(100.0, 100.0), (110.0, 104.0), (104.0, 120.0), (120.0, 118.0), (160.0, 260.0)]
    rois = [{"Name": "Calcification", "NumberOfPoints": 1, "Point_px": [f"({x}, {y})"]} for x, y in points]
    with open(release / "AllXML" / "20586908.xml", "wb") as f:
        plistlib.dump({"Images": [{"ROIs": rois}]}, f, fmt=plistlib.FMT_XML)
    return release


def test_inbreast_layout_reads_cluster_boxes_through_the_datalist(tmp_path: Path):
    release = _inbreast(tmp_path)
    parser = load_config(BUNDLE, "evaluate", bundle_root=str(tmp_path), dataset_dir=str(release),
                         layout="inbreast", split="all")  # fmt: skip
    items = parser.get_parsed_content("datalist")
    assert [Path(i["image"]).name[:8] for i in items] == ["20586908", "20586934"]
    assert all(i["patient"] == "6c613a14b80a8591" for i in items)
    # the four linked calcifications are one cluster, padded by 7 px; the speck 140 px away is not a cluster
    np.testing.assert_allclose(items[0]["box"], [[93.0, 93.0, 127.0, 127.0]])
    assert items[1]["box"].shape == (0, 4)
    parser.get_parsed_content("check_data")  # decodes both, finds the breast, checks the box
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError) as info:  # MONAI wraps what a config expression raises
        load_config(BUNDLE, "evaluate", dataset_dir=str(empty), layout="inbreast").get_parsed_content("datalist")
    cause = root_cause(info.value)
    assert isinstance(cause, DatasetLayoutError) and "AllDICOMs: folder does not exist" in str(cause)


def test_sixteen_bit_png_layout_reads_like_the_dicom_sample(pristine: Path, tmp_path: Path):
    data = copy_sample(pristine, tmp_path)
    rows = list(csv.reader((data / "boxes.csv").open()))
    for row in rows[1:]:
        dicom = data / "images" / row[0]
        if dicom.exists():
            ds = pydicom.dcmread(dicom)
            array = ds.pixel_array if ds.PhotometricInterpretation == "MONOCHROME2" else 16383 - ds.pixel_array
            Image.fromarray(array.astype(np.uint16)).save(dicom.with_suffix(".png"))
            dicom.unlink()
        row[0] = row[0].replace(".dcm", ".png")
    with (data / "boxes.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    png = load_config(BUNDLE, "evaluate", bundle_root=str(tmp_path)).get_parsed_content("datalist")
    dicom = load_config(BUNDLE, "evaluate", bundle_root=str(pristine)).get_parsed_content("datalist")
    assert [Path(i["image"]).suffix for i in png] == [".png"] * len(dicom)
    for a, b in zip(png, dicom):
        np.testing.assert_array_equal(a["box"], b["box"])
    parser = load_config(BUNDLE, "evaluate", bundle_root=str(tmp_path))
    parser.get_parsed_content("check_data")
    image = parser.get_parsed_content("preprocessing")({"image": png[0]["image"]})["image"]
    assert tuple(image.shape) == (3, 128, 192)


@pytest.mark.slow
def test_swin_trace_export_detects_as_the_eager_network(bundle_runs, tmp_path: Path):
    from monai.bundle import ckpt_export

    run = bundle_runs.trained(BUNDLE)
    parser = load_config(BUNDLE, "inference", **run.overrides)
    assert parser.get_parsed_content("torchscript_export") == {"use_trace": True}
    ts_path = tmp_path / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(ts_path), ckpt_file=str(run.root / "models" / "model.pt"),
                meta_file=str(BUNDLE / "configs" / "metadata.json"),
                config_file=str(BUNDLE / "configs" / "inference.yaml"), use_trace=True, **run.overrides)  # fmt: skip
    traced = torch.jit.load(str(ts_path), map_location="cpu").eval()
    # the traced network inside the detector (model-zoo's deployment: the detector around the exported network)
    from common.networks import make_anchor_generator, retinanet_detector

    item = parser.get_parsed_content("preprocessing")({"image": parser.get_parsed_content("datalist")[0]["image"]})
    results = []
    for network in (traced, parser.get_parsed_content("network_def")):
        if not isinstance(network, torch.jit.ScriptModule):
            network.load_state_dict(torch.load(run.root / "models" / "model.pt", weights_only=True))
        detector = retinanet_detector(network.eval(), make_anchor_generator(), score_thresh=0.02,
                                      roi_size=parser.get_parsed_content("patch_size"),
                                      spatial_dims=2, num_classes=1, size_divisible=64)  # fmt: skip
        detector.eval()
        with torch.no_grad():
            results.append(detector([item["image"].as_tensor()], use_inferer=True)[0])
    traced_out, eager_out = results
    assert len(traced_out["box"]) == len(eager_out["box"]) > 0
    torch.testing.assert_close(traced_out["box"], eager_out["box"], atol=1e-3, rtol=0)
    torch.testing.assert_close(traced_out["label_scores"], eager_out["label_scores"], atol=1e-4, rtol=0)


@pytest.mark.slow
def test_resnet50_switch_trains_evaluates_and_scripts(pristine: Path, tmp_path: Path):
    from monai.bundle import ckpt_export

    copy_sample(pristine, tmp_path)
    few = "$common.data.mammography_datalist(@dataset_dir, 'train', @layout)[:4]"
    run_workflow(BUNDLE, "train", quiet=True, max_epochs=1, backbone="resnet50", train_datalist=few,
                 bundle_root=str(tmp_path))  # fmt: skip
    plan = json.loads((tmp_path / "models" / "training_plan.json").read_text())
    assert plan["switches"]["backbone"] == "resnet50" and plan["network"]["backbone"] == "resnet50"
    run_workflow(BUNDLE, "evaluate", quiet=True, bundle_root=str(tmp_path), n_resamples=10)
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["backbone"] == "resnet50" and report["num_images"] > 0
    assert {"tpr_at_0.1_fppi", "aufc_0_0.1", "aufc_0_1", "map"} <= set(report["metrics"])
    assert set(report["confidence_intervals"]) >= {"tpr_at_0.1_fppi", "aufc_0_1"}
    parser = load_config(BUNDLE, "inference", bundle_root=str(tmp_path))
    assert parser.get_parsed_content("torchscript_export") == {"use_trace": False}  # ResNet scripts
    ckpt_export(net_id="network_def", filepath=str(tmp_path / "model.ts"),
                ckpt_file=str(tmp_path / "models" / "model.pt"), meta_file=str(BUNDLE / "configs" / "metadata.json"),
                config_file=str(BUNDLE / "configs" / "inference.yaml"), bundle_root=str(tmp_path))  # fmt: skip
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    assert isinstance(scripted, torch.jit.ScriptModule) and not isinstance(scripted, torch.jit.TracedModule)


def test_inference_writes_json_csv_and_overlay_in_file_pixels(pristine: Path, tmp_path: Path):
    copy_sample(pristine, tmp_path)
    untrained_checkpoint(BUNDLE, tmp_path)
    image = _first_image(tmp_path, "inference")
    run_workflow(BUNDLE, "inference", quiet=True, bundle_root=str(tmp_path), datalist=[{"image": str(image)}])
    out = tmp_path / "outputs"
    record = json.loads((out / f"{image.stem}.json").read_text())
    assert record["box_mode"] == "xyxy" and record["image"] == str(image)
    assert len(record["box"]) == len(record["label"]) == len(record["score"])
    ds = pydicom.dcmread(image, stop_before_pixels=True)
    boxes = np.asarray(record["box"]).reshape(-1, 4)
    assert (boxes[:, 0::2] >= -1).all() and (boxes[:, 0::2] <= ds.Columns + 1).all()
    assert (boxes[:, 1::2] >= -1).all() and (boxes[:, 1::2] <= ds.Rows + 1).all()
    with Image.open(out / f"{image.stem}_overlay.png") as overlay:
        assert overlay.size == (ds.Columns, ds.Rows)
    rows = list(csv.reader((out / "detections.csv").open()))
    assert rows[0] == ["image", "x1", "y1", "x2", "y2", "label", "score"] and len(rows) == 1 + len(boxes)


@pytest.mark.parametrize(
    ("switch", "value", "config_id", "message"),
    [("schedule", "fast", "schedule_spec", "schedule must be one of"),
     ("layout", "ddsm", "train_datalist", "layout must be one of")],
)  # fmt: skip
def test_unknown_switch_values_are_refused(tmp_path: Path, switch: str, value: str, config_id: str, message: str):
    with pytest.raises(RuntimeError) as info:  # MONAI wraps what a config expression raises
        load_config(BUNDLE, "train", bundle_root=str(tmp_path), **{switch: value}).get_parsed_content(config_id)
    cause = root_cause(info.value)
    assert isinstance(cause, ValueError) and message in str(cause)


def test_paper_schedule_is_table_2_of_the_backbone(tmp_path: Path):
    paper = load_config(BUNDLE, "train", bundle_root=str(tmp_path), schedule="paper", backbone="resnet50")
    assert paper.get_parsed_content("schedule_spec")["lr"] == pytest.approx(7.81e-5)
