"""The subpackages of common/ import a public name's submodule on first use only (issue 17: start-up)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from pathlib import Path

import pytest

from common._lazy import declared_names, lazy_exports

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = [f"common.{kind}" for kind in ("data", "transforms", "losses", "networks", "metrics", "engines")]


def test_importing_the_subpackages_loads_no_submodule_until_a_name_is_used():
    code = (
        "import sys, common.data, common.transforms, common.losses, common.networks, common.metrics, common.engines\n"
        "before = sorted(m for m in sys.modules if m.startswith('common.networks.'))\n"
        "common.networks.SFRSegNet\n"
        "after = sorted(m for m in sys.modules if m.startswith('common.networks.'))\n"
        "print(before, after)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    before, after = done.stdout.strip().split("] [")
    assert before == "[", f"submodules imported before use: {before}"
    assert "common.networks.sfrseg" in after and "common.networks.fcos" not in after


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_every_public_name_resolves_to_its_submodule_object(package: str):
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert not isinstance(value, types.ModuleType), f"{package}.{name} is a module, not the public object"
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        module.NoSuchName  # noqa: B018


def test_a_name_that_is_also_its_submodule_name_stays_the_object():
    import common.networks.enhanced_detection  # noqa: F401 (imports the transforms.cawe_fusion submodule)
    import common.transforms

    assert callable(common.transforms.cawe_fusion) and not isinstance(common.transforms.cawe_fusion, types.ModuleType)


def _fake_package(tmp_path: Path, modules: dict[str, str]) -> str:
    folder = tmp_path / "fake_pkg"
    folder.mkdir()
    for name, source in modules.items():
        (folder / f"{name}.py").write_text(source)
    (folder / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module("fake_pkg")
    finally:
        sys.path.remove(str(tmp_path))
    return "fake_pkg"


def test_names_come_from_the_submodules_all_lists(tmp_path):
    package = _fake_package(tmp_path, {"a": '__all__ = ["f", "g"]\nf = 1\ng = 2\n', "_private": "__all__ = ['h']\n"})
    try:
        names, getattr_, dir_ = lazy_exports(package)
        sys.path.insert(0, str(tmp_path))
        assert names == ["f", "g"] and getattr_("g") == 2 and {"f", "g"} <= set(dir_())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("fake_pkg.a", None)
        sys.modules.pop("fake_pkg", None)


def test_a_name_declared_by_two_submodules_is_refused(tmp_path):
    package = _fake_package(tmp_path, {"a": '__all__ = ["f"]\n', "b": '__all__ = ["f"]\n'})
    with pytest.raises(ValueError, match="'f' is declared by both .a and .b"):
        lazy_exports(package)
    sys.modules.pop("fake_pkg", None)


def test_a_submodule_without_an_all_list_is_named(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\n__all__ = names()\n")
    with pytest.raises(ValueError, match=r"m\.py: a public module of common/ needs a top-level `__all__"):
        declared_names(tmp_path / "m.py")
