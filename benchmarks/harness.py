"""Shared benchmark harness: run bundle variants side by side and print one table.

Each variant runs in its own subprocess (so its peak memory is its own): it trains on the bundle's sample,
evaluates on the held-out split and measures inference throughput of the eager network and of its TorchScript
export on the same input. The parent prints quality and speed figures side by side. Compare speed as ratios:
machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def train_and_time(bundle: Path, overrides: dict[str, Any]) -> dict[str, float]:
    """Train with ``overrides``; return wall time, iterations and seconds per training iteration."""
    from ignite.engine import Events
    from ignite.handlers import Timer
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(
        config_file=str(bundle / "configs" / "train.yaml"),
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=False,
        workflow_type="train",
        **overrides,
    )
    workflow.initialize()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    timer = Timer(average=True)
    timer.attach(trainer, start=Events.STARTED, resume=Events.ITERATION_STARTED, pause=Events.ITERATION_COMPLETED,
                 step=Events.ITERATION_COMPLETED)  # fmt: skip
    start = time.perf_counter()
    workflow.run()
    workflow.finalize()
    return {
        "train_seconds": time.perf_counter() - start,
        "iterations": trainer.state.iteration,
        "seconds_per_iteration": timer.value(),
    }


def throughput(bundle: Path, overrides: dict[str, Any], batch: int = 8, size: int = 128, repeats: int = 10) -> dict:
    """Images per second of the trained network, eager and exported with ``ckpt_export``, on the same input."""
    from monai.bundle import ckpt_export

    from common.workflows import load_config

    root = Path(overrides["bundle_root"])
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    channels = meta["network_data_format"]["inputs"]["image"]["num_channels"]
    network = load_config(bundle, "inference", **overrides).get_parsed_content("network_def")
    network.load_state_dict(torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True))
    network.eval()
    ts_path = root / "models" / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(ts_path), ckpt_file=str(root / "models" / "model.pt"),
                meta_file=str(bundle / "configs" / "metadata.json"),
                config_file=str(bundle / "configs" / "inference.yaml"), **overrides)  # fmt: skip
    scripted = torch.jit.load(str(ts_path)).eval()
    x = torch.rand(batch, channels, size, size)

    def rate(model: Callable) -> float:
        with torch.no_grad():
            for _ in range(2):
                model(x)
            start = time.perf_counter()
            for _ in range(repeats):
                model(x)
        return batch * repeats / (time.perf_counter() - start)

    with torch.no_grad():
        max_diff = float((network(x) - scripted(x)).abs().max())
    return {
        "eager_images_per_s": rate(network),
        "torchscript_images_per_s": rate(scripted),
        "ts_max_abs_diff": max_diff,
    }


def run_variant(bundle: Path, root: Path, overrides: dict[str, Any], eval_overrides: dict[str, Any]) -> dict:
    """Train, evaluate and time one variant in this process; return every figure."""
    from common.workflows import read_metrics, run_workflow

    overrides = {"bundle_root": str(root), **overrides}
    figures = train_and_time(bundle, overrides)
    run_workflow(bundle, "evaluate", quiet=True, bundle_root=str(root), **eval_overrides)
    figures["metrics"] = read_metrics(root / "eval" / "metrics.json")
    figures.update(throughput(bundle, {"bundle_root": str(root), **eval_overrides}))
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return figures


def run_variants_in_subprocesses(script: Path, variants: Sequence[str], workdir: Path, extra: Sequence[str]) -> dict:
    """Call ``script --variant NAME --workdir DIR`` once per variant; collect the JSON each one writes."""
    results = {}
    for name in variants:
        print(f"--- {name}", flush=True)
        out = workdir / f"{name}.json"
        cmd = [sys.executable, str(script), "--variant", name, "--workdir", str(workdir.parent), *extra]
        subprocess.run(cmd, check=True, cwd=ROOT)
        results[name] = json.loads(out.read_text())
        print(f"--- {name}: done in {results[name]['train_seconds']:.0f} s of training", flush=True)
    return results


def common_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".artifacts" / "benchmarks")
    parser.add_argument("--variant", help="internal: run one variant in this process and write its JSON")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs per variant")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def print_speed_table(results: dict[str, dict]) -> None:
    print("\nspeed and memory (same machine, same run; compare as ratios)")
    header = ("variant", "s/iter", "eager img/s", "TS img/s", "TS/eager", "TS |diff|", "peak MB")
    widths = (24, 9, 13, 11, 10, 11, 9)
    print(f"{header[0]:<{widths[0]}}" + "".join(f"{h:>{w}}" for h, w in zip(header[1:], widths[1:])))
    for name, r in results.items():
        ratio = r["torchscript_images_per_s"] / r["eager_images_per_s"]
        print(
            f"{name:<24}{r['seconds_per_iteration']:>9.3f}{r['eager_images_per_s']:>13.1f}"
            f"{r['torchscript_images_per_s']:>11.1f}{ratio:>10.2f}{r['ts_max_abs_diff']:>11.1e}"
            f"{r['peak_rss_mb']:>9.0f}"
        )
