"""Helpers shared by the bundle-level tests (conformance and bad input)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

from common.deployment import example_input, export_options, flat_tensors  # noqa: F401 (the tests import them from here)
from common.workflows import discover_bundles, load_config, run_workflow

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "meta_schema_20240725.json"
#: every bundle, or only those named in $TEST_BUNDLES (comma-separated), to iterate on one bundle
BUNDLES = [b for b in discover_bundles(ROOT) if b.name in os.environ.get("TEST_BUNDLES", b.name).split(",")]
BUNDLE_IDS = [b.name for b in BUNDLES]

#: per bundle, a non-default value for each variant switch it has: the training-contract tests train this variant
#: and check that evaluate and inference build it without being told (tests/test_training_contract.py)
ALTERNATIVE_VARIANTS: dict[str, dict] = {
    "brain_mri_fno_registration": {"model": "fno", "resolution": "half"},
    "breast_ultrasound_ood_classification": {"arch": "paper"},
    "chest_xray_lesion_detection": {"enhancement": "cawe", "cawe_source": "intra"},
    "colon_ct_segmentation": {"method": "set_dcl", "infonce": "standard"},
    "histology_affine_registration": {"train_size": 96},
    "mammography_calcification_detection": {"backbone": "resnet50"},
    "microscopy_super_resolution": {"scale": 2},
    "mitosis_detection": {"method": "source_only"},
    "pathology_arbitrary_scale_super_resolution": {"variant": "liif"},
    "point_supervised_boundary_loss_segmentation": {"arch": "unet", "supervision": "points"},
    "skin_lesion_classification": {"debias": "grayscale"},
    "synovial_ultrasound_segmentation": {"pooling": "max"},
    "thyroid_mpm_fusion_classification": {"latent_on_path": False},
}
#: per bundle, overrides that keep a smoke training (2-process run, resume) to a few iterations
SMOKE_OVERRIDES: dict[str, dict] = {
    "brain_mri_fno_registration": {},
    "breast_ultrasound_ood_classification": {"ensemble_size": 1, "ensemble_min_steps": 0},  # one 1-epoch member
    "chest_xray_lesion_detection": {"cawe_epochs": 1, "colorizer_steps": 2},  # 1-epoch / 2-step enhancer stages
    "colon_ct_segmentation": {"slice_step": 6},  # a third of the episodes
    "histology_affine_registration": {"warmup_epochs": 10},  # enough warm-up for matches, so fine-tuning has gradients
    "mammography_calcification_detection": {},
    "microscopy_super_resolution": {"stage_epochs": [0, 0, 0]},  # stage 4: G, T1 and T2 all train
    "pathology_arbitrary_scale_super_resolution": {"val_interval": 1},  # validate (and write model.pt) in epoch 1
    "point_supervised_boundary_loss_segmentation": {"image_size": 64},  # a quarter of the pixels
    "skin_lesion_classification": {},
    "synovial_ultrasound_segmentation": {},
    "thyroid_mpm_fusion_classification": {"ae_epochs": 1},
}

#: bundles whose configs are not yet on the training contract (TrainingCheckpoints, recorded switches, gloo-capable
#: multi_gpu_train.yaml); their contract tests are skipped until converted (issue 11)
CONTRACT_PENDING: frozenset[str] = frozenset()


def override_args(overrides: dict) -> list[str]:
    """``{"max_epochs": 1, "pooling": "max"}`` -> ``["--max_epochs", "1", "--pooling", "max"]`` for the MONAI CLI."""
    args = []
    for key, value in overrides.items():
        args += [f"--{key}", json.dumps(value) if isinstance(value, list | dict) else str(value)]
    return args


#: outputs a workflow may create under its bundle root; a run stopped by bad input must create none of them
OUTPUT_DIRS = ("models", "runs", "eval", "outputs")


def config_components(node):
    """Every component (a dict with a ``_target_``) of a raw config tree, nested ones included."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield node
        for value in node.values():
            yield from config_components(value)
    elif isinstance(node, list):
        for value in node:
            yield from config_components(value)


def metadata(bundle: Path) -> dict:
    return json.loads((bundle / "configs" / "metadata.json").read_text())


def copy_sample(source_root: Path, target_root: Path) -> Path:
    """Copy a generated ``sample_data`` folder under a fresh bundle root (for tests that damage it)."""
    target = target_root / "sample_data"
    shutil.copytree(source_root / "sample_data", target)
    return target


class BundleRuns:
    """Each bundle's sample and short-schedule training, done once per test session under a temporary bundle root.

    The conformance suite, the MONAI Label app tests and the deployment tests share these runs, so CI trains each
    bundle once.
    """

    def __init__(self, base: Path, reuse: bool = False):
        self.base = base
        self.reuse = reuse  # keep runs found under base (a developer's $BUNDLE_RUNS_DIR), else always redo them
        self._runs: dict[str, SimpleNamespace] = {}

    def sampled(self, bundle: Path) -> SimpleNamespace:
        if bundle.name not in self._runs:
            root = self.base / bundle.name
            overrides = {"bundle_root": str(root)}
            if not (self.reuse and (root / "sample_data").is_dir()):
                shutil.rmtree(root, ignore_errors=True)
                root.mkdir(parents=True)
                run_workflow(bundle, "train", run_id="make_sample", quiet=True, **overrides)
            self._runs[bundle.name] = SimpleNamespace(bundle=bundle, root=root, overrides=overrides, done=False)
        return self._runs[bundle.name]

    def trained(self, bundle: Path) -> SimpleNamespace:
        run = self.sampled(bundle)
        reusable = self.reuse and (run.root / "models" / "model.pt").is_file() and (run.root / "eval").is_dir()
        if not run.done and not reusable:
            epochs = load_config(bundle, "train").get_parsed_content("short_epochs")
            run_workflow(bundle, "train", quiet=True, max_epochs=epochs, **run.overrides)
            run_workflow(bundle, "evaluate", quiet=True, **run.overrides)
        run.done = True
        return run


def untrained_checkpoint(bundle: Path, root: Path, **overrides) -> Path:
    """Write ``network_def``'s initial weights as ``models/model.pt`` under ``root`` (evaluation and inference need a
    checkpoint; untrained weights are enough to test their input checks).
    """  # noqa: D205
    import torch

    network = load_config(bundle, "inference", bundle_root=str(root), **overrides).get_parsed_content("network_def")
    (root / "models").mkdir(exist_ok=True)
    torch.save(network.state_dict(), root / "models" / "model.pt")
    return root / "models" / "model.pt"


def top_level_names(root: Path) -> set[str]:
    return {p.name for p in root.iterdir()}


def assert_nothing_written(root: Path, before: set[str]) -> None:
    """A workflow stopped by bad input must leave none of OUTPUT_DIRS behind."""
    created = top_level_names(root) - before
    assert not created & set(OUTPUT_DIRS), f"left {sorted(created)} behind after a bad-input error"
