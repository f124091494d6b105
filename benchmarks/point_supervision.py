"""Benchmark of the point_supervised_boundary_loss_segmentation bundle on its sample.

Trains points-only partial CE (lower bound), CE + boundary loss with Euclidean and with minimum-barrier distance
maps, and full-mask CE (upper bound) on the same sample and split, then prints Dice / HD95 (mm) per class and for
the foreground union on the held-out test volumes, side by side, plus speed and memory figures.

    python benchmarks/point_supervision.py                 # the four variants of the paper's Table 1 rows
    python benchmarks/point_supervision.py --variants all  # also geodesic and intensity distances
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, common_arguments, print_speed_table, run_variant, run_variants_in_subprocesses  # noqa: E402

BUNDLE = ROOT / "bundles" / "point_supervised_boundary_loss_segmentation"
VARIANTS = {
    "points_only_ce": {"supervision": "points"},
    "ce+bl_euclidean": {"supervision": "boundary", "distance": "euclidean"},
    "ce+bl_geodesic": {"supervision": "boundary", "distance": "geodesic"},
    "ce+bl_intensity": {"supervision": "boundary", "distance": "intensity"},
    "ce+bl_mbd": {"supervision": "boundary", "distance": "mbd"},
    "full_mask_ce": {"supervision": "full"},
}
DEFAULT = ["points_only_ce", "ce+bl_euclidean", "ce+bl_mbd", "full_mask_ce"]
DEFAULT_EPOCHS = 20


def _cell(report: dict, dice: str, hd: str, column: str) -> str:
    d = report["per_class"][dice][column]["mean"]
    h = report["per_class"][hd][column]["mean"]
    return f"{d:.3f} / {h:6.2f}" if h is not None else f"{d:.3f} /    n/a"


def main() -> int:
    parser = common_arguments(__doc__)
    parser.add_argument("--variants", default=",".join(DEFAULT), help="comma list, or 'all'")
    parser.add_argument("--arch", default="enet", choices=["enet", "unet"])
    args = parser.parse_args()
    workdir = args.workdir / "point_supervision"
    epochs = args.epochs or DEFAULT_EPOCHS
    sample = workdir / "sample_data"
    if args.variant:
        overrides = {**VARIANTS[args.variant], "arch": args.arch, "max_epochs": epochs, "seed": args.seed,
                     "dataset_dir": str(sample)}  # fmt: skip
        figures = run_variant(BUNDLE, workdir / args.variant, overrides,
                              {"arch": args.arch, "dataset_dir": str(sample), "seed": args.seed})  # fmt: skip
        (workdir / f"{args.variant}.json").write_text(json.dumps(figures, indent=2))
        return 0

    from common.workflows import run_workflow

    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    workdir.mkdir(parents=True, exist_ok=True)
    run_workflow(BUNDLE, "train", run_id="make_sample", quiet=True, sample_dir=str(sample), seed=args.seed)
    extra = ["--epochs", str(epochs), "--arch", args.arch, "--seed", str(args.seed)]
    results = run_variants_in_subprocesses(Path(__file__), names, workdir, extra)

    any_report = next(iter(results.values()))["metrics"]
    print(f"\npoint supervision on the ACDC-like sample: {args.arch}, {epochs} epochs, seed {args.seed}, "
          f"{any_report['num_cases']} test volumes; cells are Dice / HD95 (mm), mean over volumes")  # fmt: skip
    print(f"{'method':<18}{'RV':>17}{'Myo':>17}{'LV':>17}{'All':>17}")
    for name, r in results.items():
        m = r["metrics"]
        cells = [_cell(m, "dice", "hd95", c) for c in ("RV", "Myo", "LV")]
        cells.append(_cell(m, "dice_all", "hd95_all", "all"))
        print(f"{name:<18}" + "".join(f"{c:>17}" for c in cells))
    trivial = any_report["metrics"]["trivial_dice"]
    print(f"{'trivial baseline':<18}  mean Dice of 'structure everywhere' = {trivial:.3f}")
    print_speed_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
