"""Every public name of common/ is exercised by at least one unit test under tests/common/."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

PACKAGES = ["common.data", "common.transforms", "common.losses", "common.networks", "common.metrics",
            "common.engines", "common.config", "common.workflows", "common.checks"]  # fmt: skip
TESTS = Path(__file__).resolve().parent


def _public_names():
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", []):
            yield package, name


@pytest.mark.parametrize(("package", "name"), list(_public_names()))
def test_public_name_has_a_unit_test(package: str, name: str):
    sources = "\n".join(p.read_text() for p in TESTS.rglob("test_*.py") if p.name != Path(__file__).name)
    assert name in sources, f"{package}.{name} is public but no unit test under tests/common/ uses it"
