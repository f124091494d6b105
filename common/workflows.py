"""Run bundle workflows in-process (one ``import monai`` for many runs) and discover bundles.

The demo, the conformance suite and the benchmarks drive bundles through :func:`run_workflow`, which is what
``python -m monai.bundle run --config_file bundles/<name>/configs/<workflow>.yaml`` does, minus the new process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .config import repository_root
from .data.errors import DatasetError

__all__ = ["WORKFLOWS", "discover_bundles", "config_path", "load_config", "run_workflow", "read_metrics"]

#: workflow name -> MONAI workflow type
WORKFLOWS = {"train": "train", "evaluate": "eval", "inference": "infer"}


def discover_bundles(root: str | Path | None = None) -> list[Path]:
    """Every folder of ``<root>/bundles`` that holds ``configs/metadata.json``, sorted by name."""
    bundles = Path(root or repository_root()) / "bundles"
    return sorted(p for p in bundles.iterdir() if (p / "configs" / "metadata.json").is_file())


def config_path(bundle: str | Path, workflow: str) -> Path:
    """``bundles/<name>/configs/<workflow>.yaml``."""
    return Path(bundle) / "configs" / f"{workflow}.yaml"


def load_config(bundle: str | Path, workflow: str = "train", **overrides: Any):
    """A ``monai.bundle.ConfigParser`` of one workflow with ``overrides`` applied (nothing instantiated)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(config_path(bundle, workflow)))
    parser.read_meta(str(Path(bundle) / "configs" / "metadata.json"))
    parser.update(overrides)
    return parser


def run_workflow(
    bundle: str | Path, workflow: str, run_id: str = "run", quiet: bool = False, **overrides: Any
) -> dict[str, Any]:
    """Run ``initialize``, ``run_id`` and ``finalize`` of one workflow config; return timing and the workflow.

    Args:
        bundle: bundle folder.
        workflow: ``train``, ``evaluate``, ``inference`` (or any ``configs/<name>.yaml``).
        run_id: the config id to run (``run``, or ``make_sample`` on ``train``).
        quiet: skip the bundle's logging.conf (keeps test output short).
        overrides: config id -> value, as ``--id value`` on the command line.
    """
    from monai.bundle import ConfigWorkflow

    bundle = Path(bundle)
    start = time.perf_counter()
    workflow_obj = ConfigWorkflow(
        config_file=str(config_path(bundle, workflow)),
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=False if quiet else str(bundle / "configs" / "logging.conf"),
        workflow_type=WORKFLOWS.get(workflow, None) if run_id == "run" else None,
        run_id=run_id,
        **overrides,
    )
    workflow_obj.initialize()
    try:
        result = workflow_obj.run()
    except RuntimeError as exc:
        # MONAI wraps errors raised inside config expressions; surface a dataset problem as itself
        cause = exc.__cause__
        while isinstance(cause, RuntimeError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, (DatasetError, FileNotFoundError, ValueError)):
            raise cause from exc
        raise
    workflow_obj.finalize()
    return {"seconds": time.perf_counter() - start, "workflow": workflow_obj, "result": result}


def read_metrics(path: str | Path) -> dict[str, Any]:
    """Load a metrics report written by :class:`common.engines.MetricsReport`."""
    return json.loads(Path(path).read_text())
