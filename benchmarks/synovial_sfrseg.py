"""Benchmark of the synovial_ultrasound_segmentation bundle on its sample.

Trains SFRSeg-Net (IEWA-DWT pooling) and the plain max-pool U-Net (the paper's baseline: the same network with max
pooling) on the same sample and split, then prints DSC, IoU, precision and recall (mean ± std over the held-out
test images) side by side, plus speed and memory figures.

    python benchmarks/synovial_sfrseg.py [--epochs N] [--seed S]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, common_arguments, print_speed_table, run_variant, run_variants_in_subprocesses  # noqa: E402

BUNDLE = ROOT / "bundles" / "synovial_ultrasound_segmentation"
VARIANTS = {"sfrseg_iewa_dwt": {"pooling": "iewa_dwt"}, "unet_max_pool": {"pooling": "max"}}
DEFAULT_EPOCHS = 60
METRICS = ("dice", "iou", "precision", "recall")


def main() -> int:
    parser = common_arguments(__doc__)
    args = parser.parse_args()
    workdir = args.workdir / "synovial_sfrseg"
    epochs = args.epochs or DEFAULT_EPOCHS
    sample = workdir / "sample_data"
    if args.variant:
        pooling = VARIANTS[args.variant]
        overrides = {**pooling, "max_epochs": epochs, "seed": args.seed, "dataset_dir": str(sample)}
        figures = run_variant(BUNDLE, workdir / args.variant, overrides,
                              {**pooling, "dataset_dir": str(sample), "seed": args.seed})  # fmt: skip
        (workdir / f"{args.variant}.json").write_text(json.dumps(figures, indent=2))
        return 0

    from common.workflows import run_workflow

    workdir.mkdir(parents=True, exist_ok=True)
    run_workflow(BUNDLE, "train", run_id="make_sample", quiet=True, sample_dir=str(sample), seed=args.seed)
    extra = ["--epochs", str(epochs), "--seed", str(args.seed)]
    results = run_variants_in_subprocesses(Path(__file__), list(VARIANTS), workdir, extra)

    any_report = next(iter(results.values()))["metrics"]
    print(f"\nsynovial fluid segmentation on the ultrasound-like sample: {epochs} epochs, seed {args.seed}, "
          f"{any_report['num_cases']} test images; mean ± std over images")  # fmt: skip
    print(f"{'model':<18}" + "".join(f"{m:>18}" for m in METRICS))
    for name, r in results.items():
        per_class, scalars = r["metrics"]["per_class"], r["metrics"]["metrics"]
        cells = [
            f"{per_class[m]['synovial_fluid']['mean']:.3f} ± {per_class[m]['synovial_fluid']['std']:.3f}"
            if m in per_class
            else f"{scalars[m]:.3f}"  # precision and recall: mean over images
            for m in METRICS
        ]
        print(f"{name:<18}" + "".join(f"{c:>18}" for c in cells))
    print(f"{'trivial baseline':<18}{any_report['metrics']['trivial_dice']:>12.3f} (DSC of 'fluid everywhere')")
    print_speed_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
