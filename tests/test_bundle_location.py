"""A bundle is where its config is: a copy of a bundle folder run by its config path writes into the copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_helpers import BUNDLE_IDS, BUNDLES, ROOT

BUNDLE = "synovial_ultrasound_segmentation"
pytestmark = pytest.mark.skipif(BUNDLE not in BUNDLE_IDS, reason=f"TEST_BUNDLES leaves {BUNDLE} out")


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.cli
def test_copied_bundle_writes_its_outputs_into_the_copy(bundle_runs, tmp_path: Path):
    bundle = next(b for b in BUNDLES if b.name == BUNDLE)
    trained = bundle_runs.trained(bundle)
    copy = tmp_path / "elsewhere" / "renamed_copy"
    shutil.copytree(bundle, copy, ignore=shutil.ignore_patterns("sample_data", "models", "eval", "runs", "outputs"))
    shutil.copytree(trained.root / "sample_data", copy / "sample_data")
    shutil.copytree(trained.root / "models", copy / "models")
    before = _files(bundle)
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(copy / "configs" / "inference.yaml")]
    env = {k: v for k, v in os.environ.items() if k != "MONAI_BUNDLES_ROOT"} | {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert list((copy / "outputs").glob("*.png")), "the copy's outputs/ is empty"
    assert _files(bundle) == before, "the run wrote into the repository's bundle instead of the copy"
