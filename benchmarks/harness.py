"""Shared benchmark harness: one timer, one memory probe, and bundle variants run side by side in one table.

Timing: :func:`time_interleaved` runs several callables round-robin, repeated, so a change of machine load hits
them alike, and returns a :class:`Timing` (median and spread) per callable; :func:`stopwatch` times one block
(a training run, one inference) for the scripts that report a single wall time. Memory: :func:`peak_rss_mib` is
this process's peak RSS; :func:`run_measured` runs a subprocess and returns its own peak RSS, so each variant run
in a subprocess reports its own peak.

Each variant of :func:`run_variant` runs in its own subprocess (so its peak memory is its own): it trains on the
bundle's sample, evaluates on the held-out split and measures inference throughput of the eager network and of
its TorchScript export on the same input, interleaved. The parent prints quality and speed figures side by side.
Compare speed as ratios: machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Timing:
    """Seconds of repeated calls of one callable: median and spread (min-max) over the rounds.

    Args:
        seconds: the duration of each round, in the order they ran.
    """

    seconds: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.seconds:
            raise ValueError("Timing needs at least one measured round")

    @property
    def median(self) -> float:  # noqa: D102
        return statistics.median(self.seconds)

    @property
    def minimum(self) -> float:  # noqa: D102
        return min(self.seconds)

    @property
    def maximum(self) -> float:  # noqa: D102
        return max(self.seconds)

    @property
    def spread(self) -> float:
        """(max - min) / median: the relative noise of the rounds."""
        return (self.maximum - self.minimum) / self.median if self.median > 0 else 0.0

    def __str__(self) -> str:
        return f"{self.median:.4f} ({self.minimum:.4f}-{self.maximum:.4f})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (for variants that report to their parent process)."""
        return {"median": self.median, "min": self.minimum, "max": self.maximum, "seconds": list(self.seconds)}


class Stopwatch:
    """Wall and CPU seconds of one ``with`` block, running until the block ends.

    ``seconds`` is wall time (``perf_counter``: what a user waits, which load inflates); ``cpu_seconds`` is this
    process's CPU time over all its threads (``process_time``: the work done, which load barely changes).
    """

    def __init__(self) -> None:
        self._start, self._cpu_start = time.perf_counter(), time.process_time()
        self._end: float | None = None
        self._cpu_end: float | None = None

    @property
    def seconds(self) -> float:  # noqa: D102
        return (self._end if self._end is not None else time.perf_counter()) - self._start

    @property
    def cpu_seconds(self) -> float:  # noqa: D102
        return (self._cpu_end if self._cpu_end is not None else time.process_time()) - self._cpu_start

    def stop(self) -> None:
        """Freeze both figures (what leaving a :func:`stopwatch` block does)."""
        if self._end is None:
            self._end, self._cpu_end = time.perf_counter(), time.process_time()


@contextmanager
def stopwatch() -> Iterator[Stopwatch]:
    """Time one ``with`` block: the :class:`Stopwatch` it yields stops when the block ends."""
    watch = Stopwatch()
    try:
        yield watch
    finally:
        watch.stop()


def super_resolve_tiles(
    predict: Callable[[torch.Tensor, tuple[int, int]], torch.Tensor], tiles: Sequence[torch.Tensor], scale: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], float]:
    """Degrade each HR tile as the SR bundles do and super-resolve it; the (SR, HR) pairs and seconds per output MP.

    Args:
        predict: ``predict(lr, hr_size)`` -> the SR batch ``(1, C, H, W)``, called under ``torch.no_grad``.
        tiles: HR tiles ``(C, H, W)`` in [0, 1]; each is cropped to a multiple of ``scale``.
        scale: the degradation's factor (``common.transforms.BicubicDegrade``, antialiased bicubic).

    Returns:
        ``[(sr clamped to [0, 1], hr)]`` as ``(1, C, H, W)`` batches, and the prediction's wall seconds per output
        megapixel (degradation and scoring not counted).
    """
    from common.transforms import BicubicDegrade

    degrade = BicubicDegrade(scale)
    pairs, seconds, pixels = [], 0.0, 0
    for hr in tiles:
        lr = degrade(hr)[None]
        hr = hr[:, : lr.shape[-2] * scale, : lr.shape[-1] * scale][None]
        with stopwatch() as watch, torch.no_grad():
            sr = predict(lr, tuple(hr.shape[-2:])).clamp(0, 1)
        seconds += watch.seconds
        pixels += hr.shape[-1] * hr.shape[-2]
        pairs.append((sr, hr))
    return pairs, seconds / (pixels / 1e6)


def time_interleaved(calls: Mapping[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1) -> dict[str, Timing]:
    """Time callables round-robin: each round calls every one once, ``repeats`` rounds after ``warmup`` rounds.

    Interleaving makes a change of machine load (another job starting) hit every callable alike, so the ratios of
    the medians are fair even on a shared machine; the absolute figures are not.

    Args:
        calls: name -> callable taking no argument (bind inputs with a closure or ``functools.partial``).
        repeats: measured rounds (the median is over these).
        warmup: unmeasured rounds first (lazy initialisation, TorchScript's profiling runs, caches).

    Returns:
        name -> :class:`Timing`, in the order of ``calls``.

    Raises:
        ValueError: no callable, or fewer than one measured round.
    """
    if not calls:
        raise ValueError("time_interleaved needs at least one callable")
    if repeats < 1:
        raise ValueError(f"time_interleaved needs repeats >= 1, got {repeats}")
    for _ in range(warmup):
        for call in calls.values():
            call()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - start)
    return {name: Timing(tuple(values)) for name, values in seconds.items()}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Measured:
    """What :func:`run_measured` returns: exit code, captured output, and the child's own peak RSS and times."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss_mib: float
    cpu_seconds: float = 0.0  # user + system time of the child alone
    wall_seconds: float = 0.0


def run_measured(cmd: Sequence[str], cwd: Path = ROOT, env: Mapping[str, str] | None = None,
                 capture: bool = True) -> Measured:  # fmt: skip
    """Run ``cmd``; return its exit code, output, peak RSS and CPU / wall seconds (that child's alone: ``os.wait4``).

    ``RUSAGE_CHILDREN`` would give the largest peak of every child so far; ``wait4`` gives this one's.

    Args:
        cmd: the command line.
        cwd: its working directory.
        env: its environment (default: this process's).
        capture: capture stdout / stderr (otherwise they go to this process's streams).

    Returns:
        A :class:`Measured`.
    """
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err, stopwatch() as watch:
        process = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env) if env is not None else None,
                                   stdout=out if capture else None, stderr=err if capture else None)  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
        out.seek(0), err.seek(0)
        watch.stop()
        return Measured(process.returncode, out.read(), err.read(), usage.ru_maxrss / 1024,
                        usage.ru_utime + usage.ru_stime, watch.seconds)  # fmt: skip


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
    with stopwatch() as watch:
        workflow.run()
        workflow.finalize()
    return {
        "train_seconds": watch.seconds,
        "iterations": trainer.state.iteration,
        "seconds_per_iteration": timer.value(),
    }


def throughput(bundle: Path, overrides: dict[str, Any], batch: int = 8, size: int = 128, repeats: int = 10) -> dict:
    """Images per second of the trained network, eager and exported with ``ckpt_export``, on the same input.

    The two run interleaved (:func:`time_interleaved`, 2 warm-up rounds, ``repeats`` measured); images/s is the
    batch over the median seconds per call.
    """
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

    with torch.no_grad():
        max_diff = float((network(x) - scripted(x)).abs().max())
        timings = time_interleaved({"eager": lambda: network(x), "torchscript": lambda: scripted(x)}, repeats, 2)
    return {
        "eager_images_per_s": batch / timings["eager"].median,
        "torchscript_images_per_s": batch / timings["torchscript"].median,
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
    figures["peak_rss_mb"] = peak_rss_mib()
    return figures


def run_variants_in_subprocesses(script: Path, variants: Sequence[str], workdir: Path, extra: Sequence[str]) -> dict:
    """Call ``script --variant NAME --workdir DIR`` once per variant; collect the JSON each one writes."""
    results = {}
    for name in variants:
        print(f"--- {name}", flush=True)
        out = workdir / f"{name}.json"
        cmd = [sys.executable, str(script), "--variant", name, "--workdir", str(workdir.parent), *extra]
        run = run_measured(cmd, capture=False)
        if run.returncode != 0:
            raise subprocess.CalledProcessError(run.returncode, cmd)
        results[name] = json.loads(out.read_text())
        # the child's own peak as its parent saw it (the variant's own figure stays "peak_rss_mb")
        results[name]["subprocess_peak_rss_mb"] = run.peak_rss_mib
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
