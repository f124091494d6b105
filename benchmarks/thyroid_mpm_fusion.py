"""Benchmark of the thyroid_mpm_fusion_classification bundle on its sample: fusion vs single modalities vs stacking.

Every variant goes through the same classifier (the bundle's --input_mode switch): the fusion autoencoder's latent
(the paper), each modality alone (BSHG, FSHG, TPEF, repeated to 3 channels) and naive 3-channel stacking. Each is
trained --runs times with different initialisation seeds on the same section-wise split, evaluated on the held-out
test sections, and summarised as the paper does: mean +- sd over all runs and over the best half of the runs (chosen
by validation AUROC, not by test AUROC). AUROC is computed from probabilities; the hard-label variant (what the
paper's code computed) is printed for comparison.

    python benchmarks/thyroid_mpm_fusion.py [--epochs N] [--runs R] [--seed S]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, common_arguments  # noqa: E402

BUNDLE = ROOT / "bundles" / "thyroid_mpm_fusion_classification"
VARIANTS = ("fusion", "BSHG", "FSHG", "TPEF", "stack")
DEFAULT_EPOCHS = 30


def main() -> int:
    from common.metrics import aggregate_runs
    from common.workflows import run_workflow

    parser = common_arguments(__doc__)
    parser.add_argument("--runs", type=int, default=2, help="repeated runs per variant (the paper: 10)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    epochs = args.epochs or DEFAULT_EPOCHS
    base = args.workdir / "thyroid_mpm_fusion"
    base.mkdir(parents=True, exist_ok=True)
    run_workflow(BUNDLE, "train", run_id="make_sample", quiet=True, bundle_root=str(base))
    data = str(base / "sample_data")
    results: dict[str, list[dict[str, float]]] = {}
    seconds: dict[str, float] = {}
    for variant in args.variants.split(","):
        results[variant] = []
        start = time.perf_counter()
        for r in range(args.runs):
            root = base / f"{variant}_run{r}"
            common = {"bundle_root": str(root), "dataset_dir": data, "input_mode": variant}
            run_workflow(BUNDLE, "train", quiet=True, max_epochs=epochs, seed=args.seed + r, **common)
            run_workflow(BUNDLE, "evaluate", quiet=True, split="val", output_dir=str(root / "eval_val"), **common)
            run_workflow(BUNDLE, "evaluate", quiet=True, split="test", **common)
            test = json.loads((root / "eval" / "metrics.json").read_text())["metrics"]
            val = json.loads((root / "eval_val" / "metrics.json").read_text())["metrics"]
            results[variant].append({**{k: v for k, v in test.items() if v is not None}, "val_auroc": val["auroc"]})
        seconds[variant] = time.perf_counter() - start
    best_k = max(1, args.runs // 2)
    print(f"\nthyroid_mpm_fusion_classification sample, test sections; {epochs} classifier epochs, {args.runs} runs "
          f"per variant (seeds {args.seed}..{args.seed + args.runs - 1}); mean +- sd")  # fmt: skip
    header = ("variant", "AUROC (all)", f"AUROC (best {best_k} by val)", "AUROC hard", "accuracy", "F1 FA", "F1 FTC",
              "s/variant")  # fmt: skip
    widths = (9, 14, 22, 14, 14, 12, 12, 10)
    print("".join(f"{h:<{w}}" for h, w in zip(header, widths)))
    for variant, runs in results.items():
        every, best = aggregate_runs(runs), aggregate_runs(runs, best_k=best_k)

        def cell(stats: dict, key: str) -> str:
            return f"{stats[key]['mean']:.3f}+-{stats[key]['sd']:.3f}"

        row = (variant, cell(every, "auroc"), cell(best, "auroc"), cell(every, "auroc_hard_labels"),
               cell(every, "accuracy"), f"{every['f1_FA']['mean']:.3f}", f"{every['f1_FTC']['mean']:.3f}",
               f"{seconds[variant]:.0f}")  # fmt: skip
        print("".join(f"{c:<{w}}" for c, w in zip(row, widths)))
    print("trivial baseline (constant 0.5 scored by the same function): AUROC 0.500")
    (base / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
