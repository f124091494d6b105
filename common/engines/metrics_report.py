"""Write an evaluator's metrics to a JSON file, with per-class and per-case breakdowns."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from monai.utils import min_version, optional_import

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["MetricsReport", "json_number", "summary_table", "write_json_atomic", "write_text_atomic"]


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file, so readers never see a half-written file.

    Args:
        path: the destination (its folder is created).
        text: the whole content; written as given (``newline=""``: a CSV's line ends are kept).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; reports are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """Write JSON to ``path`` through a temporary file (:func:`write_text_atomic`); NaN and infinity are refused."""
    return write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False, default=str) + "\n")


def json_number(value: Any) -> float | None:
    """A metric as JSON can hold it: rounded to 6 decimals, ``None`` for a missing, NaN or infinite value.

    JSON has no NaN: undefined values (HD95 of an empty prediction, an AUC with one class) become null.
    """
    return None if value is None or not math.isfinite(float(value)) else round(float(value), 6)


def summary_table(metrics: dict[str, Any], num_cases: int, path: str | Path, limit: int = 12) -> str:
    """A few lines a reader takes in at a glance: the first ``limit`` scalar metrics, one per line, and where the rest
    are.

    Args:
        metrics: metric name -> value (scalars are shown; lists and dicts stay in the file).
        num_cases: number of evaluated cases.
        path: the report file.
        limit: how many scalar metrics to show.

    Returns:
        The table as one multi-line string.
    """  # noqa: D205
    scalars = [(k, v) for k, v in metrics.items() if isinstance(v, int | float) or v is None]
    width = max((len(k) for k, _ in scalars[:limit]), default=0)
    lines = [f"{num_cases} cases; metrics written to {path}"]
    lines += [f"  {k:<{width}}  {'n/a' if v is None else f'{v:.4f}'}" for k, v in scalars[:limit]]
    if len(metrics) > limit:
        lines.append(f"  ... {len(metrics) - min(limit, len(scalars))} more in {Path(path).name}")
    return "\n".join(lines)


def _summary(column: torch.Tensor) -> dict[str, float | int | None]:
    finite = column[torch.isfinite(column)]
    return {
        "mean": json_number(finite.mean().item()) if finite.numel() else None,
        "std": json_number(finite.std(unbiased=False).item()) if finite.numel() else None,
        "n": int(finite.numel()),
        "n_undefined": int(column.numel() - finite.numel()),
    }


class MetricsReport:
    """Ignite handler that writes ``engine.state.metrics`` and per-case details to ``<output_dir>/<filename>``.

    Metrics attached with ``save_details=True`` (and whose details are one score per case and class, as for Dice,
    IoU or Hausdorff distance; not confusion-matrix counts) contribute a per-class summary (mean, std, number of
    cases and of undefined values such as HD95 of an empty prediction) and a per-case table keyed by the input
    file name.

    Args:
        output_dir: folder of the report.
        filename: report file name.
        class_names: names of the columns of per-class metrics (foreground classes only when the metric excludes
            the background).
        extra: constant entries copied into the report (for example the configuration that produced it).
    """

    def __init__(
        self,
        output_dir: str | Path,
        filename: str = "metrics.json",
        class_names: Sequence[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(output_dir) / filename
        self.class_names = list(class_names) if class_names else None
        self.extra = dict(extra or {})
        self._cases: list[str] = []

    def attach(self, engine: Any) -> None:  # noqa: D102
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect_names)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _reset(self, engine: Any) -> None:
        self._cases = []

    def _collect_names(self, engine: Any) -> None:
        output = engine.state.output
        items = output if isinstance(output, list) else [output]
        for item in items:
            pred = item.get("pred") if isinstance(item, dict) else None
            meta = getattr(pred, "meta", {}) or {}
            self._cases.append(str(meta.get("filename_or_obj", f"case_{len(self._cases)}")))

    def _columns(self, count: int) -> list[str]:
        """Class names when they fit; a single column (for example the foreground union) is called ``all``."""
        if self.class_names and count == len(self.class_names):
            return self.class_names
        return ["all"] if count == 1 else [str(i) for i in range(count)]

    def __call__(self, engine: Any) -> None:  # noqa: D102
        report: dict[str, Any] = {"metrics": {}, "per_class": {}, "cases": {}, **self.extra}
        for name, value in engine.state.metrics.items():
            if isinstance(value, torch.Tensor):
                value = value.tolist()
            report["metrics"][name] = json_number(value) if isinstance(value, (int, float)) else value
        for name, details in getattr(engine.state, "metric_details", {}).items():
            details = torch.as_tensor(details, dtype=torch.float64).reshape(len(self._cases) or -1, -1)
            columns = self._columns(details.shape[1])
            report["per_class"][name] = {c: _summary(details[:, i]) for i, c in enumerate(columns)}
            for case, row in zip(self._cases, details.tolist()):
                report["cases"].setdefault(Path(case).name, {})[name] = {
                    c: json_number(v) for c, v in zip(columns, row)
                }
        report["num_cases"] = len(self._cases)
        write_json_atomic(self.path, report)
        engine.logger.info(summary_table(report["metrics"], report["num_cases"], self.path))
