"""Training throughput with one process and with two (torchrun, gloo on CPU), measured in one run.

Both runs use the same bundle, the same multi-process config (``multi_gpu_train.yaml``) and the same schedule;
only ``--nproc_per_node`` changes. Each rank reports its training-loop time (trainer start to end, validation
included) and the items its sampler gave it (``common.distributed.RankReport``); samples/s counts every rank's
items. On a CPU machine the processes share its cores: torchrun gives each of two processes one thread, a single
process keeps all of them, so the ratio shows what data parallelism buys on this machine, not on GPUs.

    python benchmarks/distributed_training.py [--bundle synovial_ultrasound_segmentation] [--epochs 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import Stopwatch  # noqa: E402


def run(bundle: Path, root: Path, processes: int, epochs: int) -> dict:
    reports = root / f"reports_{processes}"
    configs = [str(bundle / "configs" / "train.yaml"), str(bundle / "configs" / "multi_gpu_train.yaml")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
           "-m", "monai.bundle", "run", "--config_file", repr(configs), "--bundle_root", str(root),
           "--max_epochs", str(epochs), "--resume", "False", "--rank_report_dir", str(reports)]  # fmt: skip
    watch = Stopwatch()
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    wall = watch.seconds
    if result.returncode != 0:
        sys.exit(f"{processes}-process run failed:\n{result.stderr[-4000:]}")
    ranks = [json.loads((reports / f"rank{r}.json").read_text()) for r in range(processes)]
    seconds = max(r["seconds"] for r in ranks)
    items = sum(len(r["items"]) for r in ranks)
    return {"seconds": seconds, "items": items, "samples_per_s": items / seconds, "wall": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="synovial_ultrasound_segmentation")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs per setting (spread is printed)")
    args = parser.parse_args()
    bundle = ROOT / "bundles" / args.bundle

    from common.workflows import run_workflow

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run_workflow(bundle, "train", run_id="make_sample", quiet=True, bundle_root=str(root))
        results: dict[int, list[dict]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for processes in (1, 2):  # alternate, so drifting machine load hits both settings alike
                results[processes].append(run(bundle, root, processes, args.epochs))

    print(f"\n{args.bundle}: {args.epochs} epochs, {args.repeats} runs per setting, {os.cpu_count()} CPU cores, gloo")
    header = ("processes", "samples/epoch", "loop s (mean ± sd)", "samples/s", "vs 1 process")
    print(" | ".join(header))
    base = statistics.mean(r["samples_per_s"] for r in results[1])
    for processes, runs in results.items():
        secs = [r["seconds"] for r in runs]
        rate = statistics.mean(r["samples_per_s"] for r in runs)
        spread = statistics.stdev(secs) if len(secs) > 1 else 0.0
        per_epoch = runs[0]["items"] // args.epochs
        loop = f"{statistics.mean(secs):.1f} ± {spread:.1f}"
        print(f"{processes:>9} | {per_epoch:>13} | {loop:>18} | {rate:>9.2f} | {rate / base:>11.2f}x")
    print("\ncommand: python benchmarks/distributed_training.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
