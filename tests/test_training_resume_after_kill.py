"""A training run killed with SIGKILL mid-epoch resumes from its last saved epoch when the same command is rerun.

Through the real CLI, on one bundle (the mechanism is common.engines.TrainingCheckpoints, shared by every bundle;
tests/test_training_contract.py checks resuming for each of them). While the first run trains, every checkpoint
in models/ is loaded again and again: none may ever be truncated.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from bundle_helpers import BUNDLE_IDS, BUNDLES, ROOT, copy_sample

from common.engines import PLAN_FILENAME

BUNDLE = "synovial_ultrasound_segmentation"
EPOCHS = 6
pytestmark = pytest.mark.skipif(BUNDLE not in BUNDLE_IDS, reason=f"TEST_BUNDLES leaves {BUNDLE} out")


def _epochs_completed(models: Path) -> int:
    try:
        return json.loads((models / PLAN_FILENAME).read_text())["epochs_completed"]
    except (FileNotFoundError, KeyError):
        return 0


@pytest.mark.slow
@pytest.mark.cli
def test_sigkill_mid_epoch_then_rerun_resumes_and_finishes(bundle_runs, tmp_path: Path):
    bundle = next(b for b in BUNDLES if b.name == BUNDLE)
    copy_sample(bundle_runs.sampled(bundle).root, tmp_path)
    models = tmp_path / "models"
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(bundle / "configs" / "train.yaml"),
           "--bundle_root", str(tmp_path), "--max_epochs", str(EPOCHS)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    unreadable, loads = [], 0
    deadline = time.monotonic() + 600
    try:
        while _epochs_completed(models) < 2 and process.poll() is None and time.monotonic() < deadline:
            for path in models.glob("*.pt") if models.is_dir() else ():
                try:
                    torch.load(path, map_location="cpu", weights_only=False)
                    loads += 1
                except FileNotFoundError:
                    pass  # moved between glob and load
                except Exception as exc:  # a truncated or half-written checkpoint
                    unreadable.append(f"{path.name}: {exc}")
            time.sleep(0.05)
        assert process.poll() is None, (
            "the first run ended before it could be killed: " + (tmp_path / "first.log").read_text()[-3000:]
        )
        time.sleep(1.0)  # into the next epoch (about 2-3 s each on 2 cores)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    assert not unreadable, unreadable
    assert loads > 0
    saved = _epochs_completed(models)
    assert 2 <= saved < EPOCHS

    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert f"after epoch {saved} of {EPOCHS}" in output, output[-4000:]
    assert _epochs_completed(models) == EPOCHS
    plan = json.loads((models / PLAN_FILENAME).read_text())
    assert plan["best"]["epoch"] is not None and plan["best"]["value"] is not None
    assert not list(models.glob(".*.tmp")), "a temporary file of the killed run was left behind"
    assert not list(models.glob("previous-*")), "the rerun started afresh instead of resuming"
