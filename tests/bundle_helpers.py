"""Helpers shared by the bundle-level tests (conformance and bad input)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from common.workflows import discover_bundles

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "meta_schema_20240725.json"
BUNDLES = discover_bundles(ROOT)
BUNDLE_IDS = [b.name for b in BUNDLES]

#: outputs a workflow may create under its bundle root; a run stopped by bad input must create none of them
OUTPUT_DIRS = ("models", "runs", "eval", "outputs")


def metadata(bundle: Path) -> dict:
    return json.loads((bundle / "configs" / "metadata.json").read_text())


def copy_sample(source_root: Path, target_root: Path) -> Path:
    """Copy a generated ``sample_data`` folder under a fresh bundle root (for tests that damage it)."""
    target = target_root / "sample_data"
    shutil.copytree(source_root / "sample_data", target)
    return target


def example_input(bundle: Path, batch: int = 1, n: int = 8):
    """A random input of the shape metadata's first input declares, with ``n`` substituted as verify_net_in_out does."""
    import torch

    spec = metadata(bundle)["network_data_format"]["inputs"]["image"]
    shape = []
    for size in spec["spatial_shape"]:
        if isinstance(size, str):  # "16*n" -> 128 for n=8
            size = eval(re.sub(r"\bn\b", str(n), size), {"__builtins__": {}})
        shape.append(int(size))
    return torch.rand(batch, spec["num_channels"], *shape)
