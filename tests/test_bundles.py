"""Conformance suite: one parametrized module walks every folder of bundles/ (as timm's tests walk every model).

For each bundle: the files and config ids of the bundle contract (CONTRIBUTING.md), metadata against MONAI's
schema, MONAI's property checks, then sample -> train (short schedule) -> evaluate -> inference (through the real
CLI) -> verify_net_in_out -> ckpt_export with TorchScript/eager parity. Everything runs under a temporary
bundle_root, so the repository's own bundle folders are never written to.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from bundle_helpers import (
    BUNDLE_IDS,
    BUNDLES,
    ROOT,
    SCHEMA,
    config_components,
    example_input,
    export_options,
    flat_tensors,
    metadata,
)

from common.data import ImageFileError
from common.image_io import read_image_array
from common.workflows import load_config, read_metrics, run_workflow

REQUIRED_FILES = [
    "LICENSE",
    "configs/metadata.json",
    "configs/train.yaml",
    "configs/evaluate.yaml",
    "configs/inference.yaml",
    "configs/multi_gpu_train.yaml",
    "configs/logging.conf",
    "docs/README.md",
    "docs/data_license.txt",
]
# ids MONAI Label, model-zoo CI and MONAI's workflow properties read
TRAIN_IDS = [
    "bundle_root", "device", "dataset_dir", "network_def", "network", "short_epochs", "make_sample",
    "train#preprocessing", "train#dataset#data", "train#dataloader", "train#inferer", "train#handlers",
    "train#trainer", "train#trainer#max_epochs", "validate#dataset#data", "validate#evaluator", "val_interval",
    "initialize", "run",
]  # fmt: skip
INFER_IDS = [
    "bundle_root", "device", "dataset_dir", "network_def", "network", "preprocessing", "inferer", "postprocessing",
    "dataset", "evaluator", "handlers", "initialize", "run",
]  # fmt: skip
# MONAI Label reads segmentation/classification/detection from the folder name; registration and super-resolution
# bundles are served by the app's image-result task (apps/monailabel), which reads the same words
TASK_WORDS = ("segmentation", "classification", "detection", "registration", "super_resolution")
TORCHSCRIPT_ATOL = 1e-4
SCHEMA_MD5 = "76e1add273836515d0bbb3bc71962474"  # md5 of schemas/meta_schema_20240725.json as copied from shared/


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_required_files(bundle: Path):
    missing = [f for f in REQUIRED_FILES if not (bundle / f).is_file()]
    assert not missing, f"{bundle.name} lacks {missing}"
    assert not (bundle / "scripts").exists(), "bundle Python belongs in common/, not in a scripts/ folder"
    assert any(word in bundle.name for word in TASK_WORDS), "MONAI Label reads the task type from the folder name"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_metadata_validates_against_schema(bundle: Path, tmp_path: Path):
    from monai.bundle import verify_metadata

    schema_copy = tmp_path / "schema.json"  # verify_metadata would download the schema if the file were missing
    schema_copy.write_bytes(SCHEMA.read_bytes())
    verify_metadata(meta_file=str(bundle / "configs" / "metadata.json"), filepath=str(schema_copy), hash_val=SCHEMA_MD5)
    meta = metadata(bundle)
    inputs, outputs = meta["network_data_format"]["inputs"], meta["network_data_format"]["outputs"]
    assert next(iter(inputs)) == "image" and next(iter(outputs)) == "pred", "MONAI Label reads the first entries"
    assert outputs["pred"].get("channel_def"), "MONAI Label takes the label names from channel_def"
    assert meta["version"] in meta["changelog"]


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_metadata_versions_match_constraints(bundle: Path):
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    meta = metadata(bundle)
    assert meta["monai_version"] == pins["monai"]
    assert meta["pytorch_version"] == pins["torch"]
    assert meta["numpy_version"] == pins["numpy"]
    for name, version in meta["required_packages_version"].items():
        assert pins.get(name.lower()) == version, f"{name} {version} is not the tested version {pins.get(name.lower())}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
@pytest.mark.parametrize(("workflow", "ids"), [("train", TRAIN_IDS), ("inference", INFER_IDS), ("evaluate", INFER_IDS)])
def test_config_ids(bundle: Path, workflow: str, ids: list[str]):
    parser = load_config(bundle, workflow)
    missing = [i for i in ids if i not in parser]
    assert not missing, f"{workflow}.yaml lacks {missing}"


def _stats_handlers(node):
    """Every ``StatsHandler`` component in a raw config tree (TensorBoard handlers excluded)."""
    return (c for c in config_components(node) if str(c["_target_"]).split(".")[-1] == "StatsHandler")


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_console_logs_once_per_epoch(bundle: Path):
    """A StatsHandler without ``iteration_log`` prints a line per iteration (issue 19: 1,750 lines in one demo)."""
    import yaml

    for config in sorted((bundle / "configs").glob("*.yaml")):
        handlers = list(_stats_handlers(yaml.safe_load(config.read_text())))
        chatty = [h.get("tag_name", h.get("name", "?")) for h in handlers if "iteration_log" not in h]
        assert not chatty, (
            f"{config.name}: StatsHandler {chatty} logs every iteration; set iteration_log: "
            "'$common.engines.last_iteration_of_epoch' (or false)"
        )


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_verify_net_in_out(bundle: Path):
    from monai.bundle import verify_net_in_out

    if "detection" in bundle.name:
        # a detection network returns its head maps (MONAI's verify_net_in_out reads one tensor's channels, so
        # model-zoo's CI skips it for detection): classification maps first, num_channels each, then box maps
        network = load_config(bundle, "inference").get_parsed_content("network_def").eval()
        pred = metadata(bundle)["network_data_format"]["outputs"]["pred"]
        with torch.no_grad():
            maps = flat_tensors(network(example_input(bundle)))
        assert maps and len(maps) % 2 == 0, "expected classification maps, then as many box-regression maps"
        assert all(m.shape[1] == pred["num_channels"] for m in maps[: len(maps) // 2])
        return
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(bundle / "configs" / "metadata.json"),
        config_file=str(bundle / "configs" / "inference.yaml"),
        n=8,
    )


# ---- the workflow chain, once per bundle --------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BUNDLES, ids=BUNDLE_IDS)
def sampled(request, bundle_runs) -> SimpleNamespace:
    """The bundle's sample, generated under a temporary bundle root (shared with other test modules)."""
    return bundle_runs.sampled(request.param)


@pytest.fixture(scope="module")
def trained(sampled, bundle_runs) -> SimpleNamespace:
    """Train on the bundle's short schedule, then evaluate (once per session)."""
    return bundle_runs.trained(sampled.bundle)


@pytest.mark.parametrize(
    ("workflow", "workflow_type"), [("train", "train"), ("inference", "infer"), ("evaluate", "infer")]
)
def test_monai_workflow_properties(sampled, workflow: str, workflow_type: str):
    from monai.bundle import ConfigWorkflow

    wf = ConfigWorkflow(
        config_file=str(sampled.bundle / "configs" / f"{workflow}.yaml"),
        meta_file=str(sampled.bundle / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type=workflow_type,
        **sampled.overrides,
    )
    wf.initialize()
    assert not wf.check_properties(), f"{workflow}.yaml misses required MONAI properties"


@pytest.mark.slow
def test_train_writes_plain_state_dict_and_logs(trained):
    checkpoint = trained.root / "models" / "model.pt"
    assert checkpoint.is_file()
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values()), "MONAI Label loads a plain state dict"
    network = load_config(trained.bundle, "inference", **trained.overrides).get_parsed_content("network_def")
    assert set(state) == set(network.state_dict())
    assert list((trained.root / "runs").glob("events.out.tfevents.*")), "TensorBoard logs are missing"


@pytest.mark.slow
def test_evaluate_writes_metrics_that_beat_the_trivial_baseline(trained):
    report = read_metrics(trained.root / "eval" / "metrics.json")
    parser = load_config(trained.bundle, "evaluate", **trained.overrides)
    assert report["num_cases"] == len(parser.get_parsed_content("datalist")) > 0
    key = next(iter(parser.get("key_metric")))
    # the baseline is `trivial_<key>` beside the key metric, or (detection) a `trivial_baseline` report block scored
    # by the same code
    trivial = report["metrics"].get("trivial_" + key)
    baseline = trivial if trivial is not None else report["trivial_baseline"]["metrics"][key]
    score = report["metrics"][key]
    # the sample must carry learnable signal: the short schedule has to beat the bundle's trivial baseline (all
    # foreground, identity transform, bicubic, chance...) clearly; key metrics are higher-is-better
    margin = parser.get("trivial_margin", 0.1)
    assert score > baseline + margin, f"{key} {score:.3f} does not beat the trivial baseline {baseline:.3f} + {margin}"
    assert report["cases"], "per-case metrics are missing"


@pytest.mark.slow
@pytest.mark.cli
def test_inference_through_the_cli_writes_one_output_per_input(trained):
    parser = load_config(trained.bundle, "inference", **trained.overrides)
    expected = len(parser.get_parsed_content("datalist")) * parser.get("outputs_per_case", 1)
    expected += parser.get("outputs_per_run", 0)  # e.g. one CSV of every image's detections
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    config = str(trained.bundle / "configs" / "inference.yaml")
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config,
           "--bundle_root", str(trained.root)]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    outputs = [p for p in (trained.root / "outputs").iterdir() if p.is_file()]
    assert len(outputs) == expected


@pytest.mark.slow
def test_torchscript_export_matches_eager(trained):
    from monai.bundle import ckpt_export

    ts_path = trained.root / "models" / "model.ts"
    ckpt_export(
        net_id="network_def",
        filepath=str(ts_path),
        ckpt_file=str(trained.root / "models" / "model.pt"),
        meta_file=str(trained.bundle / "configs" / "metadata.json"),
        config_file=str(trained.bundle / "configs" / "inference.yaml"),
        **export_options(trained.bundle, **trained.overrides),
        **trained.overrides,
    )
    scripted = torch.jit.load(str(ts_path), map_location="cpu").eval()
    network = load_config(trained.bundle, "inference", **trained.overrides).get_parsed_content("network_def")
    network.load_state_dict(torch.load(trained.root / "models" / "model.pt", map_location="cpu", weights_only=True))
    network.eval()
    torch.manual_seed(0)
    x = example_input(trained.bundle, batch=2)
    with torch.no_grad():
        eager, script = flat_tensors(network(x)), flat_tensors(scripted(x))
    assert [e.shape for e in eager] == [s.shape for s in script]
    for e, s in zip(eager, script):
        assert torch.allclose(e, s, atol=TORCHSCRIPT_ATOL), f"max |diff| {(e - s).abs().max():.2e}"


@pytest.mark.slow
def test_sample_generation_is_deterministic(trained, tmp_path: Path):
    other = {"bundle_root": str(tmp_path)}
    run_workflow(trained.bundle, "train", run_id="make_sample", quiet=True, **other)

    def digest(folder: Path) -> str:
        # decoded voxels, not bytes: gzip headers of .nii.gz files carry a timestamp
        h = hashlib.sha256()
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(f.relative_to(folder).as_posix().encode())
            try:
                h.update(read_image_array(f).tobytes())
            except ImageFileError:
                h.update(f.read_bytes())
        return h.hexdigest()

    assert digest(tmp_path / "sample_data") == digest(trained.root / "sample_data")
