"""Bundle-specific tests of thyroid_mpm_fusion_classification.

Bad inputs the generic suite does not make (wrong size, wrong channel count, constant image, missing modality file in
the raw layout, corrupted file), the section-wise split, the baseline switch and what the training plan records of
it, the inference JSON content (independent sigmoid ``class_scores``, not probabilities) and the autoencoder stage
on a rerun.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from bundle_helpers import ROOT, assert_nothing_written, copy_sample, top_level_names, untrained_checkpoint
from PIL import Image

from common.data import DatasetError, DatasetLayoutError, ImageFileError, convert_mpm_rois
from common.engines import network_arguments
from common.engines.mpm_fusion import CLASS_SCORES_NOTE
from common.workflows import load_config, run_workflow

BUNDLE = ROOT / "bundles" / "thyroid_mpm_fusion_classification"


@pytest.fixture(scope="module")
def pristine(bundle_runs) -> Path:
    return bundle_runs.sampled(BUNDLE).root


def _first(data: Path) -> Path:
    return sorted(data.glob("*/*.png"))[0]


def _wrong_size(data: Path) -> tuple[Path, str]:
    path = _first(data)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(path)
    return path, "differs from the expected"


def _grey(data: Path) -> tuple[Path, str]:
    path = _first(data)
    with Image.open(path) as img:
        img.convert("L").save(path)
    return path, "channel"


def _constant(data: Path) -> tuple[Path, str]:
    path = _first(data)
    Image.fromarray(np.full((128, 128, 3), 40, np.uint8)).save(path)
    return path, "constant"


def _constant_modality(data: Path) -> tuple[Path, str]:
    path = _first(data)
    array = np.asarray(Image.open(path)).copy()
    array[..., 2] = 0
    Image.fromarray(array).save(path)
    return path, "TPEF channel is constant"


def _corrupted(data: Path) -> tuple[Path, str]:
    path = _first(data)
    path.write_bytes(b"not a png" + path.read_bytes()[200:400])
    return path, "cannot read"


def _unknown_label(data: Path) -> tuple[Path, str]:
    table = data / "sections.csv"
    table.write_text(table.read_text().replace(",FA\n", ",adenoma\n", 1))
    return table, "expected 'section,label'"


@pytest.mark.parametrize("workflow", ["train", "evaluate", "inference"])
@pytest.mark.parametrize("damage", [_wrong_size, _grey, _constant, _constant_modality, _corrupted, _unknown_label])
def test_bad_region_stops_before_writing(pristine: Path, tmp_path: Path, damage, workflow: str):
    data = copy_sample(pristine, tmp_path)
    if workflow != "train":
        untrained_checkpoint(BUNDLE, tmp_path)
    before = top_level_names(tmp_path)
    path, words = damage(data)
    with pytest.raises(DatasetError) as info:
        run_workflow(BUNDLE, workflow, quiet=True, max_epochs=1, split="all", **{"bundle_root": str(tmp_path)})
    assert str(path) in str(info.value) and words in str(info.value), str(info.value)
    assert_nothing_written(tmp_path, before)


def _write_raw(root: Path, size: int = 96) -> None:
    rng = np.random.default_rng(1)
    for section in ("s1", "s2"):
        roi = root / section / "roi1"
        for modality in ("BSHG", "FSHG"):
            (roi / modality).mkdir(parents=True)
            for deg in range(0, 181, 20):
                image = (rng.random((size, size)) * 1000 * (1 + np.cos(np.deg2rad(deg)) ** 2)).astype(np.float32)
                Image.fromarray(image).save(roi / modality / f"{modality}_pol_lin_{deg}.tif")
        Image.fromarray((rng.random((size, size)) * 500).astype(np.float32)).save(roi / "TPEF.tif")


def test_raw_conversion_averages_polarisation_and_stacks(tmp_path: Path):
    _write_raw(tmp_path / "raw")
    out = convert_mpm_rois(tmp_path / "raw", tmp_path / "data", {"s1": "FA", "s2": "FTC"})
    array = np.asarray(Image.open(out / "s1" / "roi1.png"))
    assert array.shape == (96, 96, 3) and array.dtype == np.uint8
    assert (out / "sections.csv").read_text().splitlines() == ["section,label", "s1,FA", "s2,FTC"]


def test_raw_conversion_names_a_missing_modality_file(tmp_path: Path):
    _write_raw(tmp_path / "raw")
    missing = tmp_path / "raw" / "s2" / "roi1" / "FSHG" / "FSHG_pol_lin_60.tif"
    missing.unlink()
    with pytest.raises(DatasetLayoutError, match="FSHG polarisation image at 60 deg is missing") as info:
        convert_mpm_rois(tmp_path / "raw", tmp_path / "data", {"s1": "FA", "s2": "FTC"})
    assert str(missing) in str(info.value)
    assert not (tmp_path / "data").exists(), "nothing may be written when a region is incomplete"
    (tmp_path / "raw" / "s1" / "roi1" / "TPEF.tif").unlink()
    with pytest.raises(DatasetLayoutError, match="TPEF image is missing"):
        convert_mpm_rois(tmp_path / "raw", tmp_path / "data", {"s1": "FA", "s2": "FTC"})


def test_raw_conversion_rejects_a_constant_modality(tmp_path: Path):
    _write_raw(tmp_path / "raw")
    Image.fromarray(np.zeros((96, 96), np.float32)).save(tmp_path / "raw" / "s1" / "roi1" / "TPEF.tif")
    with pytest.raises(ImageFileError, match="TPEF is constant"):
        convert_mpm_rois(tmp_path / "raw", tmp_path / "data", {"s1": "FA", "s2": "FTC"})


def test_splits_are_by_section_and_hold_both_classes(pristine: Path):
    parser = load_config(BUNDLE, "train", bundle_root=str(pristine))
    train, val = parser.get_parsed_content("train_datalist"), parser.get_parsed_content("val_datalist")
    test = load_config(BUNDLE, "evaluate", bundle_root=str(pristine)).get_parsed_content("datalist")
    sections = [{i["section"] for i in part} for part in (train, val, test)]
    assert not (sections[0] & sections[1] or sections[0] & sections[2] or sections[1] & sections[2])
    for part in (train, val, test):
        assert {i["label"] for i in part} == {0, 1}


@pytest.mark.parametrize("mode", ["fusion", "BSHG", "FSHG", "TPEF", "stack"])
def test_input_mode_switch_builds_one_scriptable_network(mode: str):
    network = load_config(BUNDLE, "inference", input_mode=mode).get_parsed_content("network_def").eval()
    x = torch.rand(2, 3, 128, 128)
    scripted = torch.jit.script(network)
    with torch.no_grad():
        assert torch.allclose(network(x), scripted(x), atol=1e-5)
    assert network(x).shape == (2, 2)


def test_recorded_network_arguments_identify_every_variant():
    """The plan records plain arguments of the factory (no module reprs), distinct for every front end."""
    recorded = []
    for mode in ("fusion", "BSHG", "FSHG", "TPEF", "stack"):
        for latent_on_path in (True, False):
            spec = load_config(BUNDLE, "train", input_mode=mode, latent_on_path=latent_on_path)
            arguments = network_arguments(spec.get_parsed_content("network_spec"))
            assert all(isinstance(v, (str, int, float, bool, list, type(None))) for v in arguments.values())
            recorded.append(json.dumps(arguments, sort_keys=True))
    assert len(set(recorded)) == len(recorded)


def test_unknown_input_mode_is_refused():
    with pytest.raises((ValueError, RuntimeError), match="input_mode"):
        load_config(BUNDLE, "inference", input_mode="SHG").get_parsed_content("network_def")


@pytest.mark.slow
def test_reports_hold_the_paper_metrics_and_class_scores(bundle_runs):
    trained = bundle_runs.trained(BUNDLE)
    report = json.loads((trained.root / "eval" / "metrics.json").read_text())
    for key in ("auroc", "trivial_auroc", "auroc_hard_labels", "accuracy", "precision_FA", "recall_FTC", "f1_FA"):
        assert key in report["metrics"]
    assert report["metrics"]["trivial_auroc"] == 0.5
    assert report["class_scores_note"] == CLASS_SCORES_NOTE
    assert all(set(case["class_scores"]) == {"FA", "FTC"} for case in report["cases"].values())
    run_workflow(BUNDLE, "inference", quiet=True, **trained.overrides)
    outputs = sorted((trained.root / "outputs").glob("*.json"))
    records = [json.loads(path.read_text()) for path in outputs]
    # two independent sigmoids: named what they are, with the note, never called probabilities
    for record in records:
        assert "probabilities" not in record and record["class_scores_note"] == CLASS_SCORES_NOTE
        assert set(record["class_scores"]) == {"FA", "FTC"}
        assert all(0.0 <= p <= 1.0 for p in record["class_scores"].values())
        assert record["predicted_class"] == max(record["class_scores"], key=record["class_scores"].get)
    sums = [sum(record["class_scores"].values()) for record in records]
    assert max(abs(total - 1.0) for total in sums) > 1e-3, "sigmoid scores that always sum to 1 would be softmax"


@pytest.mark.slow
def test_rerun_does_not_retrain_the_autoencoder(pristine: Path, tmp_path: Path, caplog):
    import logging

    copy_sample(pristine, tmp_path)
    overrides = {"bundle_root": str(tmp_path), "max_epochs": 1, "ae_epochs": 1}
    run_workflow(BUNDLE, "train", quiet=True, **overrides)
    with caplog.at_level(logging.INFO, logger="common.engines"):
        run_workflow(BUNDLE, "train", quiet=True, **{**overrides, "max_epochs": 2})
    assert "stage 1 skipped" in caplog.text and "autoencoder epoch" not in caplog.text
    assert "after epoch 1 of 2" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="common.engines"):  # another variant: a new run, stage 1 again
        run_workflow(BUNDLE, "train", quiet=True, **{**overrides, "latent_on_path": False})
    assert "autoencoder epoch 1/1" in caplog.text and "stage 1 skipped" not in caplog.text
    assert list((tmp_path / "models").glob("previous-*")), "the earlier run is set aside, not overwritten"
