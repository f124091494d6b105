"""Inference speed of every bundle's network: eager, TorchScript (``ckpt_export``) and ONNX Runtime, side by side.

For each bundle, on the input shape its ``metadata.json`` declares (batch 1 unless ``--batch``):

- **eager**: ``network_def`` of ``inference.yaml`` in eval mode, under ``torch.no_grad()``;
- **TorchScript**: the file ``python -m monai.bundle ckpt_export`` writes (with the bundle's ``torchscript_export``
  options), loaded with ``torch.jit.load``;
- **ONNX Runtime**: ``common.deployment.export_onnx`` (TorchScript-based exporter, opset 17) run by onnxruntime's
  CPU provider with the same number of threads; a network ONNX cannot express is reported with the reason.

The three run interleaved in one process (round-robin, ``--repeats`` rounds), so a change of machine load hits them
alike; the table gives the median seconds per call and the spread (min-max over rounds), images/s, and the
achieved GFLOP/s (FLOPs counted once on the eager network with ``torch.utils.flop_counter``) next to the fp32 GEMM
peak measured in the same process (``torch.mm`` of 2048 x 2048). Output parity is the largest absolute difference
from the eager output. Peak memory is measured in a fresh subprocess per runtime: the process's peak RSS after the
runs and its growth over the loaded state (what inference itself allocates). Weights are the untrained
initialisation (seed 0): speed does not depend on their values.

    python benchmarks/speed.py [--bundles a b] [--repeats 7] [--threads 2] [--batch 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RUNTIMES = ("eager", "torchscript", "onnxruntime")


def gemm_peak(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 matrix-multiply rate in GFLOP/s on ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.rand(size, size), torch.rand(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _build(bundle: Path, workdir: Path, batch: int, runtimes: tuple[str, ...]) -> tuple[dict, object, dict]:
    """The runtimes' callables on the bundle's example input, plus its FLOPs and the reasons of failed exports."""
    import torch
    from monai.bundle import ckpt_export

    from common.deployment import eager_outputs, example_input, export_onnx, export_options, onnx_outputs, onnx_session
    from common.workflows import load_config

    torch.manual_seed(0)
    network = load_config(bundle, "inference").get_parsed_content("network_def").eval()
    example = example_input(bundle, batch=batch)
    calls, failures = {}, {}
    if "eager" in runtimes:
        calls["eager"] = lambda: eager_outputs(network, example)
    if "torchscript" in runtimes:
        ckpt, ts_path = workdir / "model.pt", workdir / "model.ts"
        torch.save(network.state_dict(), ckpt)
        try:
            ckpt_export(net_id="network_def", filepath=str(ts_path), ckpt_file=str(ckpt),
                        meta_file=str(bundle / "configs" / "metadata.json"),
                        config_file=str(bundle / "configs" / "inference.yaml"), **export_options(bundle))  # fmt: skip
            scripted = torch.jit.load(str(ts_path)).eval()
            calls["torchscript"] = lambda: eager_outputs(scripted, example)
        except Exception as error:  # reported in the table, not fatal for the other runtimes
            failures["torchscript"] = f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
    if "onnxruntime" in runtimes:
        try:
            export_onnx(network, example, workdir / "model.onnx")
            session = onnx_session(workdir / "model.onnx")
            calls["onnxruntime"] = lambda: onnx_outputs(session, example)
        except Exception as error:
            failures["onnxruntime"] = str(error).splitlines()[0][:100]
    return calls, example, failures


def measure_speed(bundle: Path, repeats: int, threads: int, batch: int) -> dict:
    """Interleaved timing, parity and FLOPs of the three runtimes for one bundle (run in a subprocess)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        calls, example, failures = _build(bundle, Path(tmp), batch, RUNTIMES)
        reference = calls["eager"]()
        parity = {}
        for name, call in calls.items():
            outputs = call()
            same = len(outputs) == len(reference) and all(a.shape == b.shape for a, b in zip(outputs, reference))
            parity[name] = max(float((a - b).abs().max()) for a, b in zip(outputs, reference)) if same else None
        with FlopCounterMode(display=False) as counter:
            calls["eager"]()
        flops = counter.get_total_flops()
        for call in calls.values():  # warm-up (TorchScript optimises on its first calls)
            call(), call()
        seconds: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(repeats):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                seconds[name].append(time.perf_counter() - start)
        peak = gemm_peak(threads)
    return {"seconds": seconds, "parity": parity, "flops": flops, "failures": failures, "gemm_peak": peak,
            "input": list(example.shape)}  # fmt: skip


def measure_memory(bundle: Path, runtime: str, threads: int, batch: int, repeats: int = 3) -> dict:
    """Peak RSS of one runtime in this (fresh) process: after loading, and after ``repeats`` inferences (MiB)."""
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        calls, _, failures = _build(bundle, Path(tmp), batch, (runtime,))
        if runtime not in calls:
            return {"failure": failures.get(runtime, "not built")}
        loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for _ in range(repeats):
            calls[runtime]()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"loaded_mib": loaded, "peak_mib": peak}


def _subprocess(args: list[str]) -> dict:
    result = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1][:120] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="*", help="default: every bundle")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--_speed", help=argparse.SUPPRESS)
    parser.add_argument("--_memory", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._speed:
        print(json.dumps(measure_speed(ROOT / "bundles" / args._speed, args.repeats, args.threads, args.batch)))
        return 0
    if args._memory:
        bundle, runtime = args._memory
        print(json.dumps(measure_memory(ROOT / "bundles" / bundle, runtime, args.threads, args.batch)))
        return 0

    from common.workflows import discover_bundles

    bundles = [b.name for b in discover_bundles(ROOT) if not args.bundles or b.name in args.bundles]
    start = time.perf_counter()
    common = ["--threads", str(args.threads), "--batch", str(args.batch)]
    rows = []
    for name in bundles:
        print(f"[speed] {name}", file=sys.stderr, flush=True)
        speed = _subprocess(["--_speed", name, "--repeats", str(args.repeats), *common])
        memory = {rt: _subprocess(["--_memory", name, rt, *common]) for rt in RUNTIMES}
        rows.append((name, speed, memory))

    print(f"\ninference speed, batch {args.batch}, {args.threads} threads, {args.repeats} interleaved rounds, "
          f"untrained weights; this run {time.perf_counter() - start:.0f} s; load average at the end "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| bundle | input | runtime | s/call median (min-max) | images/s | GFLOP/s (% of GEMM peak) | vs eager "
          "| max abs diff | peak RSS MiB (+ inference) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, speed, memory in rows:
        if "error" in speed:
            print(f"| {name} | - | - | failed: {speed['error']} | | | | | |")
            continue
        eager = statistics.median(speed["seconds"]["eager"])
        shape = "x".join(str(s) for s in speed["input"][1:])
        for runtime in RUNTIMES:
            mem = memory[runtime]
            mem_text = (
                f"{mem['peak_mib']:.0f} (+{mem['peak_mib'] - mem['loaded_mib']:.0f})" if "peak_mib" in mem else "-"
            )
            if runtime not in speed["seconds"]:
                print(f"| {name} | {shape} | {runtime} | not exported: {speed['failures'].get(runtime, '?')} "
                      "| | | | | |")  # fmt: skip
                continue
            times = speed["seconds"][runtime]
            median = statistics.median(times)
            gflops = speed["flops"] / median / 1e9
            diff = speed["parity"][runtime]
            print(
                f"| {name} | {shape} | {runtime} | {median:.4f} ({min(times):.4f}-{max(times):.4f}) "
                f"| {args.batch / median:.1f} | {gflops:.1f} ({100 * gflops / speed['gemm_peak']:.0f} %) "
                f"| {eager / median:.2f}x | {'shape differs' if diff is None else f'{diff:.1e}'} | {mem_text} |"
            )
        print(f"| {name} | | GEMM peak | {speed['gemm_peak']:.1f} GFLOP/s | | {speed['flops'] / 1e9:.2f} GFLOP "
              "per call | | | |")  # fmt: skip
    print(f"\ncommand: python benchmarks/speed.py {' '.join(sys.argv[1:])}".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
