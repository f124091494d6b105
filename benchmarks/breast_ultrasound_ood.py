"""Benchmark of the breast_ultrasound_ood_classification bundle on its sample.

Trains the 3-exit CNN and the deep ensemble once, evaluates, and prints side by side for every OOD set (digits =
the MNIST stand-in, CorruptPOCUS, carotid-like CCA): AUROC with its bootstrap 95 % CI, FPR95 and FPR80 at the
thresholds that keep 95 % / 80 % of the calibration images (the paper's definition), for max softmax, -energy of
each exit, the multi-level energy rule and the ensemble's variance / weighted variance / epistemic entropy; then
the classification figures and the cancer-vs-rest AUC after leaving out flagged test images (the paper's Table 5).

    python benchmarks/breast_ultrasound_ood.py [--epochs N] [--ensemble-size M] [--ensemble-epoch-scale S] [--seed S]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, common_arguments, stopwatch, throughput  # noqa: E402

BUNDLE = ROOT / "bundles" / "breast_ultrasound_ood_classification"
DEFAULT_EPOCHS = 30
METHODS = ("msp", "energy_exit1", "energy_exit2", "energy_exit3", "energy_multilevel", "ensemble_variance",
           "ensemble_weighted_variance", "ensemble_epistemic")  # fmt: skip
SETS = (("mnist", "digits (MNIST)"), ("corrupt_pocus", "CorruptPOCUS"), ("cca", "CCA-like"))


def _cell(value: float | None, scale: float = 100.0) -> str:
    return "   -" if value is None else f"{value * scale:5.1f}"


def main() -> int:
    parser = common_arguments(__doc__)
    parser.add_argument("--ensemble-size", type=int, default=5)
    parser.add_argument("--ensemble-epoch-scale", type=float, default=0.3, help="1.0 = the paper's 25-85 epochs")
    parser.add_argument("--arch", default="small")
    args = parser.parse_args()
    epochs = args.epochs or DEFAULT_EPOCHS
    root = args.workdir / "breast_ultrasound_ood"
    overrides = {"bundle_root": str(root), "seed": args.seed, "arch": args.arch}

    from common.workflows import read_metrics, run_workflow

    root.mkdir(parents=True, exist_ok=True)
    run_workflow(BUNDLE, "train", run_id="make_sample", quiet=True, **overrides)
    with stopwatch() as watch:
        run_workflow(BUNDLE, "train", quiet=True, max_epochs=epochs, ensemble_size=args.ensemble_size,
                     ensemble_epoch_scale=args.ensemble_epoch_scale, **overrides)  # fmt: skip
    train_seconds = watch.seconds
    run_workflow(BUNDLE, "evaluate", quiet=True, **overrides)
    report = read_metrics(root / "eval" / "metrics.json")
    speed = throughput(BUNDLE, {"bundle_root": str(root), "arch": args.arch}, batch=8, size=180)
    members = json.loads((root / "models" / "ensemble" / "members.json").read_text()) if args.ensemble_size else []

    m = report["metrics"]
    print(f"\nbreast ultrasound OOD detection on the speckle-phantom sample: arch {args.arch}, CNN {epochs} epochs, "
          f"{report['num_ensemble_members']} ensemble members (epochs {[x['epochs'] for x in members]}), seed "
          f"{args.seed}; ID test = {report['num_cases']} POCUS-like images; OOD sets {report['ood_sets']}; "
          f"thresholds on {report['num_calibration_images']} calibration images; AUROC CI: 1000 bootstrap "
          f"resamples of the ID test set; all figures in %")  # fmt: skip
    header = f"{'method':<27}" + "".join(
        f"{label + ' AUROC [95% CI]':>31}{'FPR95':>7}{'FPR80':>7}" for _, label in SETS
    )
    print(header)
    for method in METHODS:
        if method not in report["ood"]:
            continue
        cells = []
        for key, _ in SETS:
            row = report["ood"][method].get(key)
            if row is None:
                cells.append(f"{'-':>31}{'-':>7}{'-':>7}")
                continue
            ci = f"{_cell(row['auroc'])} [{_cell(row['auroc_ci_low'])}-{_cell(row['auroc_ci_high'])}]"
            cells.append(f"{ci:>31}{_cell(row['fpr95']):>7}{_cell(row['fpr80']):>7}")
        print(f"{method:<27}" + "".join(cells))

    print("\nclassification on the ID test set (%):")
    print(f"{'model':<12}{'accuracy':>10}{'macro AUC':>11}{'cancer AUC':>12}")
    print(f"{'CNN':<12}{_cell(m['accuracy']):>10}{_cell(m['macro_auc']):>11}{_cell(m['cancer_auc']):>12}")
    if "ensemble_accuracy" in m:
        print(f"{'ensemble':<12}{_cell(m['ensemble_accuracy']):>10}{_cell(m['ensemble_macro_auc']):>11}"
              f"{_cell(m['ensemble_cancer_auc']):>12}")  # fmt: skip
    print(f"{'trivial':<12}{_cell(m['trivial_accuracy']):>10}{_cell(m['trivial_macro_auc']):>11}"
          f"{_cell(m['trivial_cancer_auc']):>12}   (majority class / constant prediction)")  # fmt: skip

    print("\ncancer-vs-rest AUC (%) on the ID test images kept, by leave-out rate of the calibration data:")
    print(f"{'method':<27}" + "".join(f"{f'leave out {r}%':>26}" for r in (0, 5, 20)))
    for method in ("msp", "energy_exit3", "energy_multilevel", "ensemble_variance", "ensemble_weighted_variance",
                   "ensemble_epistemic"):  # fmt: skip
        rows = report["rejection"].get(method)
        if rows is None:
            continue
        cells = []
        for r in (0, 5, 20):
            x = rows[f"leave_out_{r}"]
            cells.append(f"{_cell(x['auc'])} [{_cell(x['ci_low'])}-{_cell(x['ci_high'])}] n={x['kept']:<3}")
        print(f"{method:<27}" + "".join(f"{c:>26}" for c in cells))

    print(f"\ntraining (CNN + ensemble) {train_seconds:.0f} s; inference of the CNN: eager "
          f"{speed['eager_images_per_s']:.0f} img/s, TorchScript {speed['torchscript_images_per_s']:.0f} img/s, "
          f"max |diff| {speed['ts_max_abs_diff']:.1e}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
