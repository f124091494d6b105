"""ISTE inference cost per output megapixel, 96^2 to 2048^2 outputs at x2 and x4, against the official figures.

For each model (``default``: the bundle's ``network_def``; ``paper``: the paper's encoder, SwinIR's default
configuration, see :data:`PAPER`), each scale and each output side, a fresh subprocess builds the network
(untrained weights, seed 0: cost does not depend on their values), warms it up on a small input, then times one
``upsample`` of a random ``side / scale``-sided RGB input to ``side x side`` under ``torch.no_grad()``. The settings
run round-robin, ``--repeats`` rounds (each setting once per round, so a change of machine load hits them alike);
the table gives the median wall seconds per output megapixel, the range over rounds, the median CPU seconds of the
timed call (the child's process time: on a shared machine, the work itself, without the time other jobs hold the
core) and the largest peak RSS of the setting's subprocesses (``os.wait4``, :func:`benchmarks.harness.run_measured`;
about 0.85-1 GiB of it is PyTorch, MONAI and the network before any work).

Beside it, from the same run: the fp32 GEMM rate of ``torch.mm`` (2048^2, same threads) and the FLOPs per output
megapixel counted with ``torch.utils.flop_counter`` on the 96^2 output (encoder, then the rest), so the time the
arithmetic alone needs is visible. The official implementation's figures (issue 17: the default SwinIR
configuration, 13.1 M parameters, 2-thread CPU, 48^2 input) are x2 (96^2) 7.2 s = 783 s/MP, x4 (192^2) 73.9 s =
2004 s/MP; ``vs official`` is that figure divided by ours (wall, then CPU) at the same scale.

    python benchmarks/iste_inference_cost.py [--models default paper] [--scales 2 4]
        [--sizes 96 256 512 1024 2048] [--paper-sizes ...] [--repeats 3] [--threads 1]

One thread by default: on a shared 2-core machine two OpenMP threads spend most of their time waiting for each
other (a 96^2 decode took 5-12 s with 2 threads against 0.5 s with 1 at load average 11); the official figures
are for 2 threads, so one thread here is the conservative comparison. ``CPU s/MP`` is the child's process time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import run_measured, stopwatch, time_interleaved  # noqa: E402

BUNDLE = ROOT / "bundles" / "pathology_arbitrary_scale_super_resolution"

#: the paper's sizes: SwinIR's default encoder (embed 180, 6 groups of 6 blocks, 6 heads, window 8, MLP ratio 2;
#: no up-sampling), 256-channel texture maps; decoder MLPs 256-256 and 64-channel STF projections (not given in
#: the paper) bring the total to 13.4 M parameters, the official model's 13.1 M within 2%
PAPER: dict[str, Any] = {
    "dim": 180,
    "depths": (6, 6, 6, 6, 6, 6),
    "heads": (6, 6, 6, 6, 6, 6),
    "window": 8,
    "mlp_ratio": 2.0,
    "texture_dim": 256,
    "similarity_dim": 64,
    "decoder_hidden": (256, 256),
    "block_size": 48,
}
#: seconds per output megapixel of the official implementation (issue 17), by scale
OFFICIAL = {2.0: 783.0, 4.0: 2004.0}


def build(model: str):
    """The untrained network (seed 0): ``default`` (the bundle's inference ``network_def``) or ``paper``."""
    import torch

    from common.networks import ISTE

    torch.manual_seed(0)
    if model == "paper":
        return ISTE(**PAPER).eval()
    if model == "default":
        from common.workflows import load_config

        # a fresh bundle root: no checkpoint, so the switches are the config's defaults
        parser = load_config(BUNDLE, "inference", bundle_root="/nonexistent-bundle-root")
        return parser.get_parsed_content("network_def").eval()
    raise SystemExit(f"{__file__}: unknown model '{model}' (choose from: default, paper)")


def measure(model: str, scale: float, side: int, threads: int) -> dict[str, Any]:
    """Child process: seconds of one ``upsample`` to ``side x side`` from ``side / scale`` (after a warm-up)."""
    import torch

    torch.set_num_threads(threads)
    net = build(model)
    lr = max(1, round(side / scale))
    with torch.no_grad():
        net.upsample(torch.rand(1, 3, 16, 16), round(16 * scale), round(16 * scale))  # warm-up: allocator, kernels
        image = torch.rand(1, 3, lr, lr)
        with stopwatch() as watch:
            out = net.upsample(image, side, side)
    assert out.shape == (1, 3, side, side)
    params = sum(p.numel() for p in net.parameters())
    return {"seconds": watch.seconds, "cpu": watch.cpu_seconds, "lr": lr, "params": params}


def flops_per_mp(model: str, scale: float, side: int = 96) -> tuple[float, float]:
    """(encoder, rest) FLOPs per output megapixel of one ``upsample`` to ``side x side``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    net = build(model)
    lr = max(1, round(side / scale))
    image = torch.rand(1, 3, lr, lr)
    with torch.no_grad():
        with FlopCounterMode(display=False) as enc:
            net.encoder(image)
        with FlopCounterMode(display=False) as total:
            net.upsample(image, side, side)
    mp = side * side / 1e6
    return enc.get_total_flops() / mp, (total.get_total_flops() - enc.get_total_flops()) / mp


def gemm_gflops(threads: int, size: int = 2048) -> float:
    """fp32 GFLOP/s of ``torch.mm`` of two ``size``-sided matrices (median of 5)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    timing = time_interleaved({"mm": lambda: torch.mm(a, b)}, repeats=5, warmup=1)["mm"]
    return 2 * size**3 / timing.median / 1e9


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "paper"], choices=["default", "paper"])
    parser.add_argument("--scales", nargs="+", type=float, default=[2.0, 4.0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[96, 256, 512, 1024, 2048])
    parser.add_argument("--paper-sizes", nargs="+", type=int, default=None,
                        help="output sides for the paper model (default: --sizes)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--_measure", nargs=4, metavar=("MODEL", "SCALE", "SIDE", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._measure:
        model, scale, side, threads = args._measure
        print(json.dumps(measure(model, float(scale), int(side), int(threads))))
        return 0
    if args.repeats < 1 or any(s <= 1 for s in args.scales) or any(n < 16 for n in args.sizes):
        raise SystemExit(f"{__file__}: need --repeats >= 1, --scales > 1 and --sizes >= 16")

    import torch

    print(f"$ python benchmarks/{Path(__file__).name} " + " ".join(sys.argv[1:]))
    print(f"torch {torch.__version__}, {args.threads} thread(s), load average at start {_load()}")
    sizes = {"default": args.sizes, "paper": args.paper_sizes or args.sizes}
    settings = [(m, s, n) for m in args.models for s in args.scales for n in sizes[m]]
    runs: dict[tuple, list[dict]] = {key: [] for key in settings}
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    for round_ in range(args.repeats):
        for model, scale, side in settings:
            cmd = [sys.executable, __file__, "--_measure", model, str(scale), str(side), str(args.threads)]
            result = run_measured(cmd, env=env)
            if result.returncode != 0:
                raise SystemExit(f"{__file__}: {model} x{scale} {side}^2 failed:\n{result.stderr[-3000:]}")
            record = json.loads(result.stdout.strip().splitlines()[-1])
            record["rss"] = result.peak_rss_mib
            runs[(model, scale, side)].append(record)
            print(f"  round {round_ + 1}: {model} x{scale:g} {side}^2 {record['seconds']:.2f} s "
                  f"{record['rss']:.0f} MiB (load {_load()})", file=sys.stderr, flush=True)  # fmt: skip
    gemm = gemm_gflops(args.threads)
    print(f"fp32 GEMM (torch.mm 2048^2, {args.threads} threads): {gemm:.1f} GFLOP/s; load average at end {_load()}")
    print()
    print(f"{'model':8} {'params':>7} {'scale':>5} {'output':>9} {'input':>9} {'s/MP median':>12} {'(min-max)':>17} "
          f"{'CPU s/MP':>9} {'peak RSS MiB':>12} {'vs official (wall / CPU)':>24}")  # fmt: skip
    for model in args.models:
        for scale in args.scales:
            for side in sizes[model]:
                rs = runs[(model, scale, side)]
                mp = side * side / 1e6
                per_mp = [r["seconds"] / mp for r in rs]
                median = statistics.median(per_mp)
                cpu = statistics.median(r["cpu"] / mp for r in rs)
                official = OFFICIAL.get(scale)
                ratio = f"{official / median:.1f}x / {official / cpu:.1f}x" if official else "-"
                lr = f"{rs[0]['lr']}x{rs[0]['lr']}"
                spread = f"({min(per_mp):.2f}-{max(per_mp):.2f})"
                rss = max(r["rss"] for r in rs)
                print(f"{model:8} {rs[0]['params'] / 1e6:6.2f}M {scale:5g} {f'{side}x{side}':>9} {lr:>9} "
                      f"{median:12.2f} {spread:>17} {cpu:9.2f} {rss:12.0f} {ratio:>24}")  # fmt: skip
    print()
    print("arithmetic per output megapixel (FLOPs counted on the 96^2 output) and the time it needs at the GEMM rate:")
    for model in args.models:
        for scale in args.scales:
            enc, rest = flops_per_mp(model, scale)
            need, need_enc = (enc + rest) / gemm / 1e9, enc / gemm / 1e9
            print(f"  {model:8} x{scale:g}: encoder {enc / 1e12:.2f} TFLOP + decoding {rest / 1e12:.2f} TFLOP "
                  f"= {need:.0f} s/MP at {gemm:.0f} GFLOP/s (encoder alone {need_enc:.0f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
