from __future__ import annotations

from pathlib import Path

import pytest

from common.config import repository_root
from common.workflows import WORKFLOWS, config_path, discover_bundles, load_config, read_metrics, run_workflow


def test_discover_bundles_and_config_paths():
    bundles = discover_bundles()
    assert bundles and all((b / "configs" / "metadata.json").is_file() for b in bundles)
    assert [b.name for b in bundles] == sorted(b.name for b in bundles)
    for bundle in bundles:
        for workflow in WORKFLOWS:
            assert config_path(bundle, workflow).is_file()


def test_load_config_applies_overrides_without_instantiating():
    bundle = repository_root() / "bundles" / "synovial_ultrasound_segmentation"
    parser = load_config(bundle, "train", max_epochs=3, bundle_root="/somewhere")
    assert parser.get_parsed_content("max_epochs") == 3
    assert parser.get_parsed_content("ckpt_dir") == "/somewhere/models"
    assert parser.get("_meta_#version")


def test_run_workflow_make_sample_and_surfaced_dataset_errors(tmp_path: Path):
    from common.data import DatasetLayoutError

    bundle = repository_root() / "bundles" / "synovial_ultrasound_segmentation"
    result = run_workflow(bundle, "train", run_id="make_sample", quiet=True, bundle_root=str(tmp_path))
    assert result["seconds"] > 0 and (tmp_path / "sample_data" / "images").is_dir()
    with pytest.raises(DatasetLayoutError, match="dataset folder does not exist"):
        run_workflow(bundle, "train", quiet=True, bundle_root=str(tmp_path), dataset_dir=str(tmp_path / "nope"))
    assert not (tmp_path / "models").exists() and not (tmp_path / "runs").exists()


def test_read_metrics(tmp_path: Path):
    (tmp_path / "m.json").write_text('{"metrics": {"dice": 0.5}}')
    assert read_metrics(tmp_path / "m.json")["metrics"]["dice"] == 0.5
