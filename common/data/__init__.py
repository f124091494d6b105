"""Dataset readers (each in the real dataset's own layout), sample generators and up-front file checks."""

from __future__ import annotations

from .._lazy import lazy_exports

# public names: the submodules' __all__, each submodule imported on first use of one of its names
__all__, __getattr__, __dir__ = lazy_exports(__name__)
