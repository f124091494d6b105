"""Shared Python code for the MONAI bundle collection.

Bundles reach these names from their configs with ``_target_: common.<kind>.<Name>``, or in expressions after
``imports: [$import common]`` (subpackages load on first use). The package is organised by kind: ``data``
(dataset readers, sample generators, file checks), ``transforms``, ``losses``, ``networks``, ``metrics`` and
``engines``, plus ``config`` (helpers configs call) and ``workflows`` (running bundles in-process).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = ("config", "data", "distributed", "engines", "losses", "metrics", "networks", "transforms", "workflows")


def _install_cli_conveniences() -> None:
    # the original error as the last line of a failed command, and quieter logs (CONTRIBUTING.md, "Training")
    from .config import install_error_summary
    from .engines.log_filters import install_quiet_logs

    install_error_summary()
    install_quiet_logs()


_install_cli_conveniences()


def __getattr__(name: str) -> Any:
    # MONAI's config `$import common.data` binds the dotted name, not `common`; importing `common` and loading
    # subpackages on first attribute access lets expressions write `common.data.acdc_volume_datalist(...)`.
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'common' has no attribute '{name}'")
