"""The benchmarks' shared harness, and the rule that every benchmark times and probes memory through it."""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import harness  # noqa: E402

# what a private timing loop or memory probe is made of; only harness.py may call these
PRIVATE_TIMERS = {("time", "perf_counter"), ("time", "process_time"), ("time", "time"), ("time", "monotonic"),
                  ("resource", "getrusage"), ("timeit", "timeit"), ("timeit", "repeat")}  # fmt: skip


def _private_timer_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in PRIVATE_TIMERS:
                found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in {"time", "resource", "timeit"}:
            names = [a.name for a in node.names if (node.module, a.name) in PRIVATE_TIMERS]
            found += [f"{path.name}:{node.lineno}: from {node.module} import {n}" for n in names]
    return found


def test_every_benchmark_times_through_the_harness():
    scripts = sorted(p for p in BENCHMARKS.glob("*.py") if p.name != "harness.py")
    assert len(scripts) >= 10, f"expected the benchmark scripts in {BENCHMARKS}"
    offenders = [call for script in scripts for call in _private_timer_calls(script)]
    assert not offenders, "benchmarks must time and measure memory with benchmarks/harness.py:\n" + "\n".join(offenders)


def test_the_rule_catches_a_private_timer(tmp_path: Path):
    script = tmp_path / "bench.py"
    script.write_text("import time\nfrom resource import getrusage\nstart = time.perf_counter()\n")
    expected = ["bench.py:2: from resource import getrusage", "bench.py:3: time.perf_counter"]
    assert sorted(_private_timer_calls(script)) == expected


def test_stopwatch_freezes_wall_and_cpu_time_when_the_block_ends():
    with harness.stopwatch() as watch:
        end = time.process_time() + 0.05
        while time.process_time() < end:  # busy for 0.05 s of CPU: at least as long in wall time, whatever the load
            pass
    wall, cpu = watch.seconds, watch.cpu_seconds
    assert 0.05 <= cpu < 5 and 0.05 <= wall
    time.sleep(0.02)
    assert (watch.seconds, watch.cpu_seconds) == (wall, cpu)


def test_time_interleaved_runs_every_callable_round_robin():
    order: list[str] = []
    timings = harness.time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                                       repeats=3, warmup=1)  # fmt: skip
    assert order == ["a", "b"] * 4
    assert list(timings) == ["a", "b"] and all(len(t.seconds) == 3 for t in timings.values())
    with pytest.raises(ValueError, match="repeats >= 1"):
        harness.time_interleaved({"a": lambda: None}, repeats=0)


def test_timing_median_and_spread():
    timing = harness.Timing((1.0, 3.0, 2.0))
    assert (timing.median, timing.minimum, timing.maximum, timing.spread) == (2.0, 1.0, 3.0, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        harness.Timing(())


def test_run_measured_reports_the_childs_own_memory_and_cpu_time():
    code = "import time\nx = bytearray(200 * 2**20)\nend = time.process_time() + 0.2\n"
    code += "while time.process_time() < end:\n    pass"
    run = harness.run_measured([sys.executable, "-c", code])
    assert run.returncode == 0
    assert run.peak_rss_mib > 200  # the child's 200 MiB, not this process's
    assert 0.2 <= run.cpu_seconds < 10 and run.wall_seconds >= run.cpu_seconds * 0.5
    assert harness.run_measured([sys.executable, "-c", "raise SystemExit(3)"]).returncode == 3


def test_super_resolve_tiles_degrades_crops_and_times_the_prediction():
    import torch
    import torch.nn.functional as F

    calls = []

    def predict(lr, size):
        calls.append((tuple(lr.shape), size))
        return F.interpolate(lr, size=size, mode="bilinear", align_corners=False) * 2.0  # clamped by the harness

    tiles = [torch.rand(3, 30, 26), torch.rand(3, 16, 16)]
    pairs, seconds_per_mp = harness.super_resolve_tiles(predict, tiles, scale=4)
    # each HR tile cropped to a multiple of the scale, its LR a quarter of that, the SR at the HR size
    assert calls == [((1, 3, 7, 6), (28, 24)), ((1, 3, 4, 4), (16, 16))]
    assert [tuple(hr.shape) for _, hr in pairs] == [(1, 3, 28, 24), (1, 3, 16, 16)]
    assert torch.equal(pairs[0][1][0], tiles[0][:, :28, :24])
    assert all(sr.shape == hr.shape and sr.min() >= 0 and sr.max() <= 1 for sr, hr in pairs)
    assert seconds_per_mp > 0
