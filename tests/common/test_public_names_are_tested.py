"""Every public name of common/ is used by at least one unit test under tests/common/.

"Used" is read from the syntax tree: the name is loaded (called, referenced, subclassed) or reached as an
attribute, directly or through an import alias. A mention in a comment, a string or an unused import does not count.
"""

from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
COMMON = TESTS.parents[1] / "common"
#: the kinds, then every public top-level module (common/<module>.py), so that a new one is covered by itself
PACKAGES = [f"common.{kind}" for kind in ("data", "transforms", "losses", "networks", "metrics", "engines")] + sorted(
    f"common.{path.stem}" for path in COMMON.glob("*.py") if not path.name.startswith("_")
)


def _public_names():
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", []):
            yield package, name


def used_names(source: str) -> set[str]:
    """Names a module really uses: loaded names and attributes, with import aliases mapped back to the original."""
    tree = ast.parse(source)
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                aliases[alias.asname or alias.name] = alias.name
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            used.add(aliases.get(node.id, node.id))
        elif isinstance(node, ast.Attribute):
            used.add(node.attr)
    return used


@cache
def _used_by_tests() -> frozenset[str]:
    names: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        if path.name != Path(__file__).name:
            names |= used_names(path.read_text())
    return frozenset(names)


def test_used_names_ignores_comments_strings_and_unused_imports():
    source = "from m import a, b as c\nimport x\n# d\n's = \"e\"'\nc()\nx.f\n"
    assert used_names(source) == {"b", "x", "f"}


@pytest.mark.parametrize(("package", "name"), list(_public_names()))
def test_public_name_has_a_unit_test(package: str, name: str):
    assert name in _used_by_tests(), f"{package}.{name} is public but no unit test under tests/common/ uses it"
