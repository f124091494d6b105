"""Each bundle README's component map (its "## Method" section) names code that exists.

A reader finds a paper's components where the README says: every `common.<kind>.<Name>` and `common/<path>.py` a
README names must resolve, and the Method section must name the modules it describes (at least MIN_NAMED of them).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from bundle_helpers import BUNDLE_IDS, BUNDLES, ROOT

DOTTED = re.compile(r"`(common(?:\.\w+)+)")
FILE = re.compile(r"`(common/[\w/]+\.py)")
MIN_NAMED = 4


def _method_section(text: str) -> str:
    match = re.search(r"^## Method\n(.*?)(?=^## )", text, flags=re.S | re.M)
    return match.group(1) if match else ""


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_readme_names_only_code_that_exists(bundle: Path):
    text = (bundle / "docs" / "README.md").read_text()
    missing = sorted({n for n in DOTTED.findall(text) if not _resolves(n)})
    missing += sorted({p for p in FILE.findall(text) if not (ROOT / p).is_file()})
    assert not missing, f"{bundle.name}/docs/README.md names code that does not exist: {missing}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=BUNDLE_IDS)
def test_method_section_maps_components_to_modules(bundle: Path):
    method = _method_section((bundle / "docs" / "README.md").read_text())
    assert method, f"{bundle.name}/docs/README.md has no '## Method' section"
    named = set(DOTTED.findall(method)) | set(FILE.findall(method))
    assert len(named) >= MIN_NAMED, f"{bundle.name}: the Method section names {sorted(named)}: map each component"


def test_resolution_can_fail():
    assert _resolves("common.networks.ISTE") and not _resolves("common.networks.NoSuchNetwork")
