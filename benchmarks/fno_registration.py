"""Benchmark of the brain_mri_fno_registration bundle on its sample: resolution robustness (the paper's Tables 1 and 3).

Trains FNOReg, the plain FNO and MONAI's VoxelMorph U-Net, each at full and at half resolution (images resized by
0.5 for training and validation), on the same sample and split; every model is then evaluated on the full-resolution
test pairs with the same weights. Prints Dice (mean ± std over pairs), its relative change when trained at half
resolution, % of voxels with a non-positive Jacobian determinant and seconds per pair, side by side, plus speed and
memory figures.

    python benchmarks/fno_registration.py [--epochs N] [--seed S] [--models fnoreg,voxelmorph,fno]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, common_arguments, print_speed_table, run_variant, run_variants_in_subprocesses  # noqa: E402

BUNDLE = ROOT / "bundles" / "brain_mri_fno_registration"
MODELS = ("fnoreg", "voxelmorph", "fno")
RESOLUTIONS = ("full", "half")
DEFAULT_EPOCHS = 20


def _variants(models: list[str]) -> dict[str, dict[str, str]]:
    return {f"{m}_{r}": {"model": m, "resolution": r} for m in models for r in RESOLUTIONS}


def main() -> int:
    parser = common_arguments(__doc__)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"unknown model(s) {sorted(unknown)}; choose from {MODELS}")
    variants = _variants(models)
    workdir = args.workdir / "fno_registration"
    epochs = args.epochs or DEFAULT_EPOCHS
    sample = workdir / "sample_data"
    if args.variant:
        choice = variants[args.variant]
        overrides = {**choice, "max_epochs": epochs, "seed": args.seed, "dataset_dir": str(sample)}
        # evaluation always at full resolution, with the weights trained at either resolution
        eval_overrides = {"model": choice["model"], "dataset_dir": str(sample), "seed": args.seed}
        figures = run_variant(BUNDLE, workdir / args.variant, overrides, eval_overrides)
        (workdir / f"{args.variant}.json").write_text(json.dumps(figures, indent=2))
        return 0

    from common.workflows import run_workflow

    workdir.mkdir(parents=True, exist_ok=True)
    run_workflow(BUNDLE, "train", run_id="make_sample", quiet=True, sample_dir=str(sample), seed=args.seed)
    extra = ["--epochs", str(epochs), "--seed", str(args.seed), "--models", ",".join(models)]
    results = run_variants_in_subprocesses(Path(__file__), list(variants), workdir, extra)

    any_report = next(iter(results.values()))["metrics"]
    print(f"\nbrain-like OASIS-layout sample: {epochs} epochs, seed {args.seed}, {any_report['num_cases']} test pairs "
          "evaluated at full resolution (80x96); half = trained and validated at 40x48")  # fmt: skip
    header = ("model", "trained at", "Dice", "change vs full", "%|J|<=0", "s/pair")
    widths = (12, 12, 17, 16, 10, 9)
    print("".join(f"{h:<{w}}" if i < 2 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(header, widths))))
    for model in models:
        full_dice = results[f"{model}_full"]["metrics"]["metrics"]["dice"]
        for resolution in RESOLUTIONS:
            report = results[f"{model}_{resolution}"]["metrics"]
            scalars, per_class = report["metrics"], report["per_class"]
            dice = f"{per_class['dice']['all']['mean']:.3f} ± {per_class['dice']['all']['std']:.3f}"
            change = "" if resolution == "full" else f"{100 * (scalars['dice'] - full_dice) / full_dice:+.2f}%"
            folding = f"{scalars['folding_percent']:.2f}"
            cells = [model, resolution, dice, change, folding, f"{scalars['seconds_per_pair']:.4f}"]
            print("".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths))))
    print(f"{'identity':<12}{'-':<12}{any_report['metrics']['trivial_dice']:>17.3f}   (Dice before registration)")
    print_speed_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
