"""`make demo`: for every bundle, generate its sample, then train -> evaluate -> infer on its short schedule.

Prints the wall time of each stage, then one table of the metrics each bundle reached (from its
eval/metrics.json) and where its outputs are. Run from the repository root: `python tools/demo.py [bundle ...]`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from common.config import repository_root
from common.workflows import discover_bundles, load_config, read_metrics, run_workflow


def _stage(name: str, bundle: Path, func, *args, **kwargs):
    print(f"\n=== {bundle.name}: {name}", flush=True)
    start = time.perf_counter()
    result = func(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"=== {bundle.name}: {name} done in {seconds:.1f} s", flush=True)
    return result, seconds


def _format_metrics(report: dict) -> str:
    """The headline numbers of a metrics report: every scalar metric, rounded."""
    parts = [f"{k}={v:.3f}" for k, v in report["metrics"].items() if isinstance(v, (int, float))]
    return ", ".join(parts)


def main(names: list[str]) -> int:  # noqa: D103
    bundles = [b for b in discover_bundles() if not names or b.name in names]
    if not bundles:
        print(f"no bundle matches {names}", file=sys.stderr)
        return 2
    rows = []
    for bundle in bundles:
        times = {}
        epochs = load_config(bundle, "train").get_parsed_content("short_epochs")
        _, times["sample"] = _stage("generate sample", bundle, run_workflow, bundle, "train", run_id="make_sample")
        _, times["train"] = _stage(f"train ({epochs} epochs)", bundle, run_workflow, bundle, "train", max_epochs=epochs)
        _, times["evaluate"] = _stage("evaluate", bundle, run_workflow, bundle, "evaluate")
        _, times["inference"] = _stage("inference", bundle, run_workflow, bundle, "inference")
        report = read_metrics(bundle / "eval" / "metrics.json")
        rows.append((bundle, epochs, report, times))

    root = repository_root()
    print("\n" + "=" * 100)
    print("make demo results (sample data, short schedule; held-out test split)")
    print("=" * 100)
    for bundle, epochs, report, times in rows:
        rel = bundle.relative_to(root)
        timing = ", ".join(f"{k} {v:.0f}s" for k, v in times.items())
        print(f"\n{bundle.name}  [{report['num_cases']} test cases, {epochs} epochs]")
        print(f"  metrics : {_format_metrics(report)}")
        print(f"  per case: {rel}/eval/metrics.json")
        print(f"  outputs : {rel}/outputs/  checkpoint: {rel}/models/model.pt  logs: {rel}/runs/")
        print(f"  time    : {timing}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
