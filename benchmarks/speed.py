"""Inference speed of every bundle's network: eager, TorchScript (``ckpt_export``) and ONNX Runtime, side by side.

For each bundle, on the input shape its ``metadata.json`` declares (``n`` = 8 in shapes such as ``16*n``; batch 1
unless ``--batch``):

- **eager**: ``network_def`` of ``inference.yaml`` in eval mode, under ``torch.no_grad()``;
- **TorchScript**: the file ``python -m monai.bundle ckpt_export`` writes (with the bundle's ``torchscript_export``
  options), loaded with ``torch.jit.load``;
- **ONNX Runtime**: ``common.deployment.export_onnx`` (TorchScript-based exporter, opset 17) run by onnxruntime's
  CPU provider with the same number of threads; a network ONNX cannot express is reported with the reason.

The three and an fp32 GEMM (``torch.mm`` of 512 x 512; its best round is the attainable peak: longer products are
preempted on a loaded machine and understate it) run interleaved in one process through ``benchmarks/harness.py``'s
``time_interleaved`` (round-robin, ``--repeats`` rounds after two warm-up rounds), so a change of machine load hits
them alike. The table gives the median seconds per call and the spread (min-max over rounds), images/s, the achieved
GFLOP/s (FLOPs counted once on the eager network with ``torch.utils.flop_counter``, which counts convolutions and
matrix products only: FFTs, norms and element-wise work add time but no FLOPs) at the median and its share of that
GEMM peak. Output parity is the largest absolute difference from the eager output (required <= 1e-4). Peak memory is
measured in a fresh subprocess per runtime: the child's peak RSS (``os.wait4``) and its growth over the loaded state
(what inference itself allocates). Weights are the untrained initialisation (seed 0): speed does not depend on their
values.

Below the table, per bundle: where eager time goes (``torch.profiler`` self CPU time by operator family), the
convolution share of the counted FLOPs, and the targets (TorchScript >= eager; ONNX Runtime >= 1.5x eager for
convolutional networks, i.e. convolutions >= 50 % of the FLOPs; >= 50 % of the GEMM rate for conv-heavy networks,
convolutions >= 90 % of the FLOPs) with the evidence beside each missed one.

    python benchmarks/speed.py [--bundles a b] [--repeats 7] [--threads 2] [--batch 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import Timing, peak_rss_mib, run_measured, stopwatch, time_interleaved  # noqa: E402

RUNTIMES = ("eager", "torchscript", "onnxruntime")
GEMM_SIZE = 512  # short enough (a few ms) for its best round to escape preemption on a shared machine
ATOL = 1e-4
CONV_NETWORK, CONV_HEAVY = 0.5, 0.9  # convolution share of the counted FLOPs
# operator families of the eager time profile, matched in this order on the ATen name
FAMILIES = (
    ("conv", ("conv",)),
    ("fft", ("fft",)),
    ("attention", ("softmax", "scaled_dot_product")),
    ("gemm", ("addmm", "bmm", "aten::mm", "matmul", "linear", "einsum", "baddbmm")),
    ("norm", ("norm",)),
    ("resample", ("upsample", "grid_sampler", "pool", "interpolate")),
)


def _build(bundle: Path, workdir: Path, batch: int, runtimes: tuple[str, ...]) -> tuple[dict, object, dict, object]:
    """The runtimes' callables on the bundle's example input, the input, the failed exports' reasons, the network."""
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
            failures["onnxruntime"] = " ".join(str(error).split())[:160]
    return calls, example, failures, network


def _family(name: str) -> str:
    for family, keys in FAMILIES:
        if any(key in name for key in keys):
            return family
    return "other"


def time_profile(call) -> dict[str, float]:
    """Share of one eager call's self CPU time per operator family (``torch.profiler``)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    shares: dict[str, float] = {}
    for event in prof.key_averages():
        if event.key.startswith("aten::") or event.key.startswith("mkldnn"):
            family = _family(event.key)
            shares[family] = shares.get(family, 0.0) + event.self_cpu_time_total
    total = sum(shares.values()) or 1.0
    return {family: value / total for family, value in sorted(shares.items(), key=lambda kv: -kv[1])}


def measure_speed(bundle: Path, repeats: int, threads: int, batch: int) -> dict:
    """Interleaved timing, parity, FLOPs and time profile of the runtimes for one bundle (run in a subprocess)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        calls, example, failures, _ = _build(bundle, Path(tmp), batch, RUNTIMES)
        reference = calls["eager"]()
        parity = {}
        for name, call in calls.items():
            outputs = call()
            same = len(outputs) == len(reference) and all(a.shape == b.shape for a, b in zip(outputs, reference))
            parity[name] = max(float((a - b).abs().max()) for a, b in zip(outputs, reference)) if same else None
        with FlopCounterMode(display=False) as counter:
            calls["eager"]()
        flops = counter.get_total_flops()
        conv_flops = sum(n for op, n in counter.get_flop_counts().get("Global", {}).items() if "conv" in str(op))
        profile = time_profile(calls["eager"])
        a, b = torch.rand(GEMM_SIZE, GEMM_SIZE), torch.rand(GEMM_SIZE, GEMM_SIZE)
        # warm-up 2: TorchScript's profiling executor optimises the graph on its first calls
        timings = time_interleaved({**calls, "gemm": lambda: torch.mm(a, b)}, repeats=repeats, warmup=2)
    gemm = timings.pop("gemm")
    # the peak is the best GEMM round: on a shared machine a median of these long calls measures the load too
    return {"timings": {name: t.as_dict() for name, t in timings.items()}, "parity": parity, "flops": flops,
            "conv_flops": conv_flops, "profile": profile, "failures": failures,
            "gemm_gflops": 2 * GEMM_SIZE**3 / gemm.minimum / 1e9, "input": list(example.shape)}  # fmt: skip


def measure_memory(bundle: Path, runtime: str, threads: int, batch: int, repeats: int = 3) -> dict:
    """Peak RSS of one runtime in this (fresh) process: after loading, and after ``repeats`` inferences (MiB)."""
    import torch

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        calls, _, failures, network = _build(bundle, Path(tmp), batch, (runtime,))
        if runtime not in calls:
            return {"failure": failures.get(runtime, "not built")}
        if runtime != "eager":
            del network  # the exported runtime alone, as a deployment holds it
        loaded = peak_rss_mib()
        for _ in range(repeats):
            calls[runtime]()
    return {"loaded_mib": loaded, "peak_mib": peak_rss_mib()}


def _subprocess(args: list[str]) -> dict:
    """Run this script with ``args`` in a fresh process; its JSON answer plus the child's own peak RSS."""
    run = run_measured([sys.executable, __file__, *args], env={**os.environ, "PYTHONPATH": str(ROOT)})
    if run.returncode != 0:
        return {"error": run.stderr.strip().splitlines()[-1][:160] if run.stderr.strip() else "failed"}
    return {**json.loads(run.stdout.strip().splitlines()[-1]), "child_peak_mib": run.peak_rss_mib}


def _targets(speed: dict, batch: int) -> list[str]:
    """The targets of one bundle's rows, met or missed, with the evidence beside a missed one."""
    timings = {name: Timing(tuple(t["seconds"])) for name, t in speed["timings"].items()}
    eager = timings["eager"]
    conv_share = speed["conv_flops"] / speed["flops"] if speed["flops"] else 0.0
    profile = speed["profile"]
    gflop = speed["flops"] / 1e9 / batch
    evidence = ", ".join(f"{family} {100 * share:.0f} %" for family, share in profile.items() if share >= 0.05)
    notes = []

    def overlap(other: Timing) -> bool:  # the rounds' ranges overlap: the ratio is within the noise
        return other.minimum <= eager.maximum and eager.minimum <= other.maximum

    if "torchscript" in timings:
        ts = timings["torchscript"]
        ratio = eager.median / ts.median
        verdict = "met" if ratio >= 1.0 else "MISSED" + (" (within the rounds' spread)" if overlap(ts) else "")
        notes.append(f"TorchScript >= eager: {verdict} ({ratio:.2f}x)")
    else:
        notes.append(f"TorchScript >= eager: not measured ({speed['failures'].get('torchscript', '?')})")
    if conv_share >= CONV_NETWORK:
        if "onnxruntime" in timings:
            ratio = eager.median / timings["onnxruntime"].median
            notes.append(f"ONNX Runtime >= 1.5x eager: {'met' if ratio >= 1.5 else 'MISSED'} ({ratio:.2f}x)")
        else:
            notes.append("ONNX Runtime >= 1.5x eager: not measured (no ONNX export)")
    if conv_share >= CONV_HEAVY:
        best = max(speed["flops"] / t.median / 1e9 for t in timings.values())
        share = best / speed["gemm_gflops"]
        notes.append(f">= 50 % of GEMM peak: {'met' if share >= 0.5 else 'MISSED'} (best runtime {100 * share:.0f} %)")
    return [f"convolutions {100 * conv_share:.0f} % of {gflop:.2f} GFLOP per image; eager time: {evidence}", *notes]


def _row(name: str, shape: str, runtime: str, speed: dict, memory: dict, batch: int) -> str:
    mem = memory.get(runtime, {})
    mem_text = f"{mem['child_peak_mib']:.0f} (+{mem['peak_mib'] - mem['loaded_mib']:.0f})" if "peak_mib" in mem else "-"
    if runtime not in speed["timings"]:
        return f"| {name} | {shape} | {runtime} | not exported: {speed['failures'].get(runtime, '?')} | | | | | |"
    timing = Timing(tuple(speed["timings"][runtime]["seconds"]))
    eager = Timing(tuple(speed["timings"]["eager"]["seconds"]))
    gflops = speed["flops"] / timing.median / 1e9
    diff = speed["parity"][runtime]
    parity = "shape differs" if diff is None else f"{diff:.1e}" + ("" if diff <= ATOL else " > 1e-4")
    return (f"| {name} | {shape} | {runtime} | {timing} | {batch / timing.median:.1f} "
            f"| {gflops:.1f} ({100 * gflops / speed['gemm_gflops']:.0f} %) | {eager.median / timing.median:.2f}x "
            f"| {parity} | {mem_text} |")  # fmt: skip


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
    unknown = sorted(set(args.bundles or ()) - set(bundles))
    if unknown:
        parser.error(f"no bundle named {', '.join(unknown)} under {ROOT / 'bundles'}")
    load_start = os.getloadavg()[0]
    common = ["--threads", str(args.threads), "--batch", str(args.batch)]
    rows = []
    with stopwatch() as watch:
        for name in bundles:
            print(f"[speed] {name}", file=sys.stderr, flush=True)
            speed = _subprocess(["--_speed", name, "--repeats", str(args.repeats), *common])
            memory = {rt: _subprocess(["--_memory", name, rt, *common]) for rt in RUNTIMES}
            rows.append((name, speed, memory))

    print(f"\ninference speed, batch {args.batch}, {args.threads} threads, {args.repeats} interleaved rounds, "
          f"untrained weights; this run {watch.seconds:.0f} s; load average {load_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")  # fmt: skip
    print("| bundle | input | runtime | s/call median (min-max) | images/s | GFLOP/s (% of GEMM) | vs eager "
          "| max abs diff | peak RSS MiB (+ inference) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, speed, memory in rows:
        if "error" in speed:
            print(f"| {name} | - | - | failed: {speed['error']} | | | | | |")
            continue
        shape = "x".join(str(s) for s in speed["input"][1:])
        for runtime in RUNTIMES:
            print(_row(name, shape, runtime, speed, memory, args.batch))
        print(f"| {name} | | GEMM {GEMM_SIZE}^2 | {speed['gemm_gflops']:.1f} GFLOP/s | | | | | |")
    print("\ntargets (evidence beside a missed one)")
    for name, speed, _ in rows:
        if "error" not in speed:
            print(f"- {name}: " + "; ".join(_targets(speed, args.batch)))
    print(f"\ncommand: python benchmarks/speed.py {' '.join(sys.argv[1:])}".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
