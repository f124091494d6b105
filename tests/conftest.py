"""Shared test settings: quiet, deterministic, CPU-only."""

from __future__ import annotations

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TQDM_DISABLE", "1")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def bundle_runs(tmp_path_factory):
    """Samples and short-schedule trainings shared by every test module (see bundle_helpers.BundleRuns)."""
    from pathlib import Path

    from bundle_helpers import BundleRuns

    # $BUNDLE_RUNS_DIR keeps samples and checkpoints between developer runs; CI always starts from scratch
    cached = os.environ.get("BUNDLE_RUNS_DIR")
    if cached:
        return BundleRuns(Path(cached), reuse=True)
    return BundleRuns(tmp_path_factory.mktemp("bundle_runs"))
