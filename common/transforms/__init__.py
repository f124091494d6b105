"""Transforms (array and dictionary versions) the papers add to MONAI's."""

from __future__ import annotations

from .._lazy import lazy_exports

# public names: the submodules' __all__, each submodule imported on first use of one of its names
__all__, __getattr__, __dir__ = lazy_exports(__name__)
