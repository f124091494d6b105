"""Where a bundle command's start-up goes: interpreter, torch, MONAI, ``common``, and each bundle's config.

Every phase runs in a fresh interpreter (nothing cached in the process), the phases interleaved round by round so that
a change of machine load hits them alike. For each phase the table gives the median CPU seconds (user + sys of the
child: the work done, which load barely changes) and wall seconds (what a user waits, which load inflates), each with
its spread (min-max over rounds). A bundle row times what ``python -m monai.bundle run`` does before its first
iteration that is the bundle's own: ``import monai`` and the configs' ``$import common``, reading
``inference.yaml`` and ``metadata.json``, and building ``network_def``; the ``+config`` column is that row minus the
``import monai + common`` phase.

With ``--baseline REV``, the ``common/`` package of git revision REV runs beside the working tree's, phase by phase
in the same rounds (the bundles' configs are the working tree's in both), so a start-up change is measured before
and after in one run.

    python benchmarks/startup.py [--bundles a b] [--repeats 5] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, run_measured  # noqa: E402

IMPORT_COMMON = "import common.data, common.transforms, common.losses, common.networks, common.metrics, common.engines"
BASE_PHASES = {
    "python": "pass",
    "import torch": "import torch",
    "import monai": "import monai",
    "import monai + common": f"import monai, common; {IMPORT_COMMON}",
    "import monai + $import common": "import monai, common",
}


def bundle_phase(bundle: Path) -> str:
    """The code of a bundle's phase: MONAI's config workflow on ``inference.yaml``, up to a built ``network_def``."""
    return (
        "import monai; from monai.bundle import ConfigWorkflow\n"
        f"w = ConfigWorkflow(config_file={str(bundle / 'configs' / 'inference.yaml')!r}, "
        f"meta_file={str(bundle / 'configs' / 'metadata.json')!r}, logging_file=False, workflow_type='infer')\n"
        "w.initialize(); w.parser.get_parsed_content('network_def')\n"
    )


def run_phase(code: str, common_root: Path = ROOT) -> tuple[float, float]:
    """CPU and wall seconds of ``python -c code`` in a fresh interpreter that imports ``common`` from ``common_root``.

    Raises:
        RuntimeError: the phase failed (its stderr's last lines are in the message).
    """
    done = run_measured([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(common_root)})
    if done.returncode:
        raise RuntimeError(f"phase failed:\n{code}\n{done.stderr[-2000:]}")
    return done.cpu_seconds, done.wall_seconds


def checkout_common(revision: str, target: Path) -> Path:
    """Write ``common/`` of git ``revision`` under ``target``; return ``target``."""
    archive = subprocess.run(["git", "archive", revision, "common"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundles", nargs="*", help="bundle folder names (default: every bundle)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; phases interleaved within each round")
    parser.add_argument("--baseline", help="git revision whose common/ runs beside the working tree's")
    args = parser.parse_args(argv)
    names = args.bundles or sorted(p.name for p in (ROOT / "bundles").iterdir() if (p / "configs").is_dir())
    codes = dict(BASE_PHASES) | {name: bundle_phase(ROOT / "bundles" / name) for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"": ROOT}
        if args.baseline:
            roots = {f"{args.baseline}: ": checkout_common(args.baseline, Path(tmp)), "now: ": ROOT}
        # phases that do not import common run once, not per common/ version
        phases = {(label + name if "common" in code or name in names else name): (code, root)
                  for label, root in roots.items() for name, code in codes.items()}  # fmt: skip
        cpu: dict[str, list[float]] = {name: [] for name in phases}
        wall: dict[str, list[float]] = {name: [] for name in phases}
        for round_index in range(args.repeats):
            for name, (code, root) in phases.items():
                c, w = run_phase(code, root)
                cpu[name].append(c)
                wall[name].append(w)
            print(f"[startup] round {round_index + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    load = os.getloadavg()
    print(f"start-up phases, fresh interpreter each, {args.repeats} interleaved rounds, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}, {os.cpu_count()} cores")  # fmt: skip
    print(f"{'phase':48s} | {'CPU s median (min-max)':>22s} | {'wall s median (min-max)':>23s} | +config CPU s")
    for name in phases:
        label = next((lb for lb in roots if lb and name.startswith(lb)), "")
        extra = ""
        if name[len(label) :] in names:
            base = statistics.median(cpu[label + "import monai + $import common"])
            extra = f"{statistics.median(cpu[name]) - base:13.2f}"
        print(f"{name:48s} | {summary(cpu[name]):>22s} | {summary(wall[name]):>23s} | {extra}")


if __name__ == "__main__":
    main()
