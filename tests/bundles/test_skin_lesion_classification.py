"""Bundle-specific tests of skin_lesion_classification.

ISIC bad inputs the generic suite does not make (unknown class column, a CSV row without its image, constant image,
mask of the wrong size, a debasing variant without masks), every debasing variant through the bundle's own
preprocessing, the evaluation report and Grad-CAM output, and the 4-class cutaneous workflow with its augmentation
stage under the training contract (its own models/cutaneous/, plan-driven evaluate and inference, rerun resumes and
re-uses the augmented training set).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint
from PIL import Image

from common.data import DatasetError, DatasetLayoutError
from common.engines import PLAN_FILENAME, STATE_FILENAME, network_arguments
from common.transforms import ABCDE_VARIANTS
from common.workflows import load_config, run_workflow

BUNDLE = ROOT / "bundles" / "skin_lesion_classification"


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    return bundle_runs.sampled(BUNDLE).root


def _unknown_column(data: Path) -> tuple[Path, str]:
    table = data / "isic" / "ISIC_2019_Training_GroundTruth.csv"
    table.write_text(table.read_text().replace("VASC", "VASCULAR", 1))
    return table, "unknown class column"


def _row_without_image(data: Path) -> tuple[Path, str]:
    table = data / "isic" / "ISIC_2019_Training_GroundTruth.csv"
    name = table.read_text().splitlines()[1].split(",")[0]
    (data / "isic" / "ISIC_2019_Training_Input" / f"{name}.jpg").unlink()
    return table, f"image '{name}' not found"


def _constant_image(data: Path) -> tuple[Path, str]:
    path = sorted((data / "isic" / "ISIC_2019_Training_Input").glob("*.jpg"))[0]
    Image.fromarray(np.full((128, 128, 3), 120, np.uint8)).save(path)
    return path, "constant"


def _mask_wrong_size(data: Path) -> tuple[Path, str]:
    path = sorted((data / "isic" / "masks").glob("*.png"))[0]
    with Image.open(path) as img:
        img.resize((100, 100)).save(path)
    return path, "mask size"


def _missing_masks(data: Path) -> tuple[Path, str]:
    for path in (data / "isic" / "masks").glob("*.png"):
        path.unlink()
    return data / "isic" / "masks", "no lesion mask"


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
@pytest.mark.parametrize(
    "damage", [_unknown_column, _row_without_image, _constant_image, _mask_wrong_size, _missing_masks]
)
def test_bad_isic_input_stops_before_writing(pristine: Path, tmp_path: Path, damage, workflow: str):
    data = copy_sample(pristine, tmp_path)
    if workflow != "train":
        untrained_checkpoint(BUNDLE, tmp_path)
    before = top_level_names(tmp_path)
    path, words = damage(data)
    # the mask checks only run when the chosen variant reads masks
    overrides = {"bundle_root": str(tmp_path), "split": "all", "debias": "borders"}
    with pytest.raises(DatasetError) as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, **overrides)
    assert str(path) in str(info.value) and words in str(info.value), str(info.value)
    assert_nothing_written(tmp_path, before)


@pytest.mark.parametrize("variant", ABCDE_VARIANTS)
def test_every_debasing_variant_runs_through_the_bundles_preprocessing(pristine: Path, variant: str):
    parser = load_config(BUNDLE, "evaluate", bundle_root=str(pristine), debias=variant)
    item = parser.get_parsed_content("datalist")[0]
    out = parser.get_parsed_content("preprocessing")(dict(item))
    image = torch.as_tensor(out["image"])
    assert image.shape == (3, 64, 64) and torch.isfinite(image).all() and "mask" not in out
    if variant == "grayscale":
        assert torch.allclose(image[0] * 0.229 + 0.485, image[1] * 0.224 + 0.456, atol=1e-4)
    if variant == "mask":  # the binary mask in every channel (resizing only blends the edge pixels)
        grey = image[0] * 0.229 + 0.485
        assert torch.allclose(grey, image[2] * 0.225 + 0.406, atol=1e-4)
        assert ((grey < 0.02) | (grey > 0.98)).float().mean() > 0.9 and (grey > 0.98).any()


def test_unknown_variant_is_refused(pristine: Path):
    parser = load_config(BUNDLE, "evaluate", bundle_root=str(pristine), debias="evolution")
    with pytest.raises((ValueError, RuntimeError)) as info:
        parser.get_parsed_content("preprocessing")
    error, messages = info.value, []
    while error is not None:  # MONAI wraps the transform's ValueError in its instantiation error
        messages.append(str(error))
        error = error.__cause__
    assert any("evolution" in m and "asymmetry" in m for m in messages), messages


def test_isic_2020_images_are_mapped_and_patients_stay_in_one_split(pristine: Path):
    parser = load_config(BUNDLE, "train", bundle_root=str(pristine))
    train, val = parser.get_parsed_content("train_datalist"), parser.get_parsed_content("val_datalist")
    test = load_config(BUNDLE, "evaluate", bundle_root=str(pristine)).get_parsed_content("datalist")
    patients = [{i["group"] for i in part if str(i["group"]).startswith("IP_")} for part in (train, val, test)]
    assert patients[0] and not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    assert any(i["label"] == 8 for i in train + val + test)  # ISIC 2020 "unknown" -> UNK
    for part in (train, val, test):
        assert 0 in {i["label"] for i in part}


@pytest.mark.slow
def test_report_and_gradcam_output(bundle_runs):
    trained = bundle_runs.trained(BUNDLE)
    report = json.loads((trained.root / "eval" / "metrics.json").read_text())
    m = report["metrics"]
    keys = ["melanoma_auc", "trivial_melanoma_auc", "sensitivity_at_0.5", "specificity_at_roc", "roc_threshold"]
    keys += ["baseline_foreground_ratio", "baseline_bbox_ratio", "baseline_bbox_70", "balanced_accuracy"]
    for key in keys:
        assert m[key] is not None, key
    assert m["trivial_melanoma_auc"] == 0.5 and 0.0 < m["roc_threshold"] < 1.0
    assert m["baseline_foreground_ratio"] > 0.6  # the sample's diameter cue, as the paper's Table 6
    out = trained.root / "outputs_check"
    run_workflow(BUNDLE, "inference", quiet=True, output_dir=str(out), **trained.overrides)
    records = sorted(out.glob("*.json"))
    record = json.loads(records[0].read_text())
    assert len(record["probabilities"]) == 9 and abs(sum(record["probabilities"].values()) - 1) < 1e-4
    assert record["gradcam_class"] == "MEL"
    picture = np.asarray(Image.open(out / f"{records[0].stem}_gradcam.png"))
    assert picture.shape == (64, 128, 3) and picture.std() > 5


CUTANEOUS = ("cutaneous_train", "cutaneous_evaluate", "cutaneous_inference")


def test_cutaneous_configs_share_the_network_spec_and_default_to_the_trained_switches(tmp_path: Path):
    parsers = {wf: load_config(BUNDLE, wf, bundle_root=str(tmp_path)) for wf in CUTANEOUS}
    specs = {wf: parser.get("network_spec") for wf, parser in parsers.items()}
    assert specs["cutaneous_train"] == specs["cutaneous_evaluate"] == specs["cutaneous_inference"]
    switches = parsers["cutaneous_train"].get("recorded_switches")
    assert set(switches) == {"arch", "image_size", "split_seed"}
    for wf in CUTANEOUS[1:]:
        parser = parsers[wf]
        assert parser.get("network_def") == "$@network_spec()" and "$@check_variant" in parser.get("run")
        assert parser.get_parsed_content("ckpt_path") == str(tmp_path / "models" / "cutaneous" / "model.pt")
        for name in switches:
            assert f"trained_switch(@ckpt_path, '{name}'" in str(parser.get(name))
            assert parser.get_parsed_content(name) == parsers["cutaneous_train"].get_parsed_content(name)
    train = parsers["cutaneous_train"]
    handlers = train.get("train#handlers")
    assert [h.get("_target_") for h in handlers].count("common.engines.TrainingCheckpoints") == 1
    assert "CheckpointSaver" not in json.dumps(train.get("validate#handlers"))


@pytest.mark.slow
def test_cutaneous_workflow_with_geometric_augmentation(pristine: Path, tmp_path: Path, caplog):
    import logging

    copy_sample(pristine, tmp_path)
    overrides = {"bundle_root": str(tmp_path)}
    epochs = load_config(BUNDLE, "cutaneous_train").get_parsed_content("short_epochs")
    run_workflow(BUNDLE, "cutaneous_train", quiet=True, max_epochs=epochs, **overrides)
    augmented = sorted((tmp_path / "augmented").iterdir())
    assert len(augmented) == 1 and len(list(augmented[0].rglob("*.png"))) == 4 * 30 * 7  # originals + 6 each
    # its own checkpoint folder: the melanoma detector's models/ files are not touched
    models = tmp_path / "models"
    assert {p.name for p in models.iterdir()} == {"cutaneous"}
    assert {p.name for p in (models / "cutaneous").iterdir()} == {"model.pt", PLAN_FILENAME, STATE_FILENAME}
    plan = json.loads((models / "cutaneous" / PLAN_FILENAME).read_text())
    assert plan["switches"] == {"arch": "resnet-mini", "image_size": 64, "split_seed": 0}
    # a rerun: finished, nothing trained, the augmented set re-used (not rewritten)
    manifest = augmented[0] / "augmentation_manifest.json"
    stamps = (manifest.stat().st_mtime_ns, (models / "cutaneous" / "model.pt").stat().st_mtime_ns)
    with caplog.at_level(logging.INFO):
        run_workflow(BUNDLE, "cutaneous_train", quiet=True, max_epochs=epochs, **overrides)
    assert "training already finished" in caplog.text and "re-using the geometric training set" in caplog.text
    assert stamps == (manifest.stat().st_mtime_ns, (models / "cutaneous" / "model.pt").stat().st_mtime_ns)
    # evaluate and inference build the trained network, and refuse another one before writing anything
    network = load_config(BUNDLE, "cutaneous_inference", **overrides).get_parsed_content("network_spec")
    assert network_arguments(network) == plan["network"]
    with pytest.raises(ValueError, match=r"--arch 'resnet18' \(trained with 'resnet-mini'\)"):
        run_workflow(BUNDLE, "cutaneous_inference", quiet=True, arch="resnet18", **overrides)
    assert not (tmp_path / "outputs").exists()
    run_workflow(BUNDLE, "cutaneous_evaluate", quiet=True, **overrides)
    report = json.loads((tmp_path / "eval" / "cutaneous" / "metrics.json").read_text())
    m = report["metrics"]
    assert report["num_cases"] == 60 and m["trivial_accuracy"] == 0.25
    assert m["accuracy"] > m["trivial_accuracy"] + 0.3, m
    assert all(f"recall_{c}" in m for c in ("herpes_zoster", "herpes_simplex", "molluscum_contagiosum", "non_viral"))
    run_workflow(BUNDLE, "cutaneous_inference", quiet=True, **overrides)
    outputs = list((tmp_path / "outputs" / "cutaneous").iterdir())
    assert len(outputs) == 2 * 60


def test_cutaneous_bad_input_stops_before_writing(pristine: Path, tmp_path: Path):
    data = copy_sample(pristine, tmp_path)
    path = sorted((data / "cutaneous" / "herpes_zoster").glob("*.png"))[0]
    with Image.open(path) as img:
        img.convert("L").save(path)
    before = top_level_names(tmp_path)
    with pytest.raises(DatasetError, match="channel") as info:
        run_workflow(BUNDLE, "cutaneous_train", quiet=True, max_epochs=1, bundle_root=str(tmp_path))
    assert str(path) in str(info.value)
    assert_nothing_written(tmp_path, before)
    assert not (tmp_path / "augmented").exists()
    (data / "cutaneous" / "eczema").mkdir()
    with pytest.raises(DatasetLayoutError, match="eczema"):
        run_workflow(BUNDLE, "cutaneous_train", quiet=True, max_epochs=1, bundle_root=str(tmp_path))


@pytest.mark.parametrize("arch", ["resnet50", "vgg16", "mobilenet_v2", "efficientnet_v2_s", "resnet18"])
def test_cutaneous_paper_networks_build_with_their_hyperparameters(arch: str):
    parser = load_config(BUNDLE, "cutaneous_train", arch=arch, use_paper_hyperparameters=True)
    network = parser.get_parsed_content("network_def").eval()
    with torch.no_grad():
        assert network(torch.rand(1, 3, 64, 64)).shape == (1, 4)
    expected = {"resnet50": 128, "vgg16": 16, "mobilenet_v2": 32, "efficientnet_v2_s": 32, "resnet18": 16}[arch]
    assert parser.get_parsed_content("batch_size") == expected
