"""Lazy public names for the subpackages (PEP 562), so that ``import common.networks`` costs what a config uses.

A subpackage's public names are the ``__all__`` lists of its submodules (files not starting with ``_``), read from
their source without importing them; a name's submodule is imported the first time the name is used. Each name is
thus declared once, in the module that defines it.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: a top-level ``__all__ = [...]`` (an annotation allowed), up to the first closing bracket at a line start or inline
_ALL_LIST = re.compile(r"^__all__\s*(?::[^=\n]*)?=\s*(\[[^\]]*\])", re.MULTILINE)


def declared_names(path: Path) -> list[str]:
    """The names of a module's top-level ``__all__`` list, read from its source (not parsed whole: that is slow).

    Args:
        path: the module's ``.py`` file.

    Returns:
        The names, in the module's order.

    Raises:
        ValueError: the module has no top-level ``__all__ = [...]`` list of string literals.
    """
    found = _ALL_LIST.search(path.read_text())
    try:
        names = ast.literal_eval(found.group(1)) if found else None
    except (ValueError, SyntaxError):
        names = None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"{path}: a public module of common/ needs a top-level `__all__ = [...]` list of names")
    return names


def lazy_exports(package: str) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for a subpackage whose names load on first use.

    Args:
        package: the subpackage's ``__name__`` (it must be importing, i.e. in ``sys.modules``).

    Returns:
        The public names of all its submodules, and the module-level functions that import a name's submodule when
        the name is first looked up.

    Raises:
        ValueError: a submodule without ``__all__``, or a name declared by two submodules.

    A public name that is also a submodule's name (``transforms.cawe_fusion``) is imported at once: importing that
    submodule later would otherwise bind the package attribute to the module.
    """
    namespace = sys.modules[package].__dict__
    folder = Path(namespace["__file__"]).parent
    owner: dict[str, str] = {}
    for path in sorted(folder.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        for name in declared_names(path):
            if name in owner:
                raise ValueError(f"{package}: {name!r} is declared by both .{owner[name]} and .{path.stem}")
            owner[name] = path.stem
    modules = set(owner.values())

    def __getattr__(name: str) -> Any:  # noqa: N807
        if name not in owner:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{owner[name]}", package), name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(namespace) | set(owner))

    for name in owner:
        if name in modules:
            namespace[name] = __getattr__(name)
    return list(owner), __getattr__, __dir__
