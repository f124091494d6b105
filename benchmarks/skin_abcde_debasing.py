"""Benchmark of the skin_lesion_classification bundle on its sample: melanoma detection per ABCDE debasing variant.

Bolelli et al.'s question: which ABCD cue does the network rely on? Each variant removes one cue from the training
AND the test images (original, asymmetry, borders, grayscale, mask-only, diameter), trains the 9-class classifier
from scratch on the sample's training split, and evaluates the melanoma probability on the held-out test split:
AUC, sensitivity / specificity at 0.5 and at the validation-ROC threshold. The no-network foreground-ratio baselines
(Table 6) are printed below. Repeated runs use different initialisation seeds on the same split.

    python benchmarks/skin_abcde_debasing.py [--epochs N] [--runs R] [--variants original,mask,...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, common_arguments, stopwatch  # noqa: E402

BUNDLE = ROOT / "bundles" / "skin_lesion_classification"
VARIANTS = ("original", "asymmetry", "borders", "grayscale", "mask", "diameter")
KEYS = ("melanoma_auc", "sensitivity_at_0.5", "specificity_at_0.5", "sensitivity_at_roc", "specificity_at_roc",
        "f1_at_0.5", "balanced_accuracy")  # fmt: skip


def main() -> int:
    from common.metrics import aggregate_runs
    from common.workflows import run_workflow

    parser = common_arguments(__doc__)
    parser.add_argument("--runs", type=int, default=2, help="repeated runs per variant")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    base = args.workdir / "skin_abcde_debasing"
    base.mkdir(parents=True, exist_ok=True)
    if not (base / "sample_data").is_dir():
        run_workflow(BUNDLE, "train", run_id="make_sample", quiet=True, bundle_root=str(base))
    data = str(base / "sample_data" / "isic")
    results: dict[str, list[dict[str, float]]] = {}
    seconds: dict[str, float] = {}
    baselines: dict[str, float] = {}
    for variant in args.variants.split(","):
        results[variant] = []
        with stopwatch() as watch:
            for r in range(args.runs):
                root = base / f"{variant}_run{r}"
                common = {"bundle_root": str(root), "dataset_dir": data, "debias": variant}
                epochs = {"max_epochs": args.epochs} if args.epochs else {"max_epochs": "$@short_epochs"}
                run_workflow(BUNDLE, "train", quiet=True, seed=args.seed + r, **epochs, **common)
                run_workflow(BUNDLE, "evaluate", quiet=True, **common)
                metrics = json.loads((root / "eval" / "metrics.json").read_text())["metrics"]
                results[variant].append({k: v for k, v in metrics.items() if v is not None})
                baselines = {k: v for k, v in metrics.items() if k.startswith("baseline_")} or baselines
        seconds[variant] = watch.seconds
    print(f"\nskin_lesion_classification sample (ISIC layout), test split; melanoma = MEL probability of the 9-class "
          f"softmax; {args.epochs or 'short_epochs'} epochs, {args.runs} runs per variant (seeds "
          f"{args.seed}..{args.seed + args.runs - 1}); mean +- sd")  # fmt: skip
    header = ("variant", "AUC", "sens@0.5", "spec@0.5", "sens@ROC", "spec@ROC", "F1@0.5", "bal.acc 9-way", "s/variant")
    widths = (11, 14, 10, 10, 10, 10, 9, 14, 10)
    print("".join(f"{h:<{w}}" for h, w in zip(header, widths)))
    for variant, runs in results.items():
        stats = aggregate_runs(runs)
        cells = [f"{stats['melanoma_auc']['mean']:.3f}+-{stats['melanoma_auc']['sd']:.3f}"]
        cells += [f"{stats[k]['mean']:.3f}" for k in KEYS[1:]]
        print("".join(f"{c:<{w}}" for c, w in zip((variant, *cells, f"{seconds[variant]:.0f}"), widths)))
    print("no network (mask geometry as the melanoma score, Table 6): "
          + ", ".join(f"{k.removeprefix('baseline_')} AUC {v:.3f}" for k, v in baselines.items()))  # fmt: skip
    print("trivial baseline (a constant score): AUC 0.500")
    (base / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
