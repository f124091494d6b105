"""Benchmark of the thyroid_mpm_fusion_classification bundle on its sample: fusion vs single modalities vs stacking.

Every variant goes through the same classifier (the bundle's --input_mode switch): the fusion autoencoder's latent
(the paper), each modality alone (BSHG, FSHG, TPEF, repeated to 3 channels) and naive 3-channel stacking. Each is
trained --runs times with different initialisation seeds on the same section-wise split, evaluated on the held-out
test sections, and summarised as the paper does: mean +- sd over all runs and over the best half of the runs (chosen
by validation AUROC, not by test AUROC). AUROC is computed from probabilities; the hard-label variant (what the
paper's code computed) is printed for comparison.

First it prints a cheap sanity check of the sample without any network: L2-regularised logistic regression on simple
per-image statistics of one modality, of all three side by side, and on one relational feature (the correlation of
blurred BSHG and FSHG), scored on the test sections (trained on train + val) and by a 4-fold section-grouped
cross-validation. ``--features_only`` stops after it.

    python benchmarks/thyroid_mpm_fusion.py [--epochs N] [--runs R] [--seed S] [--features_only]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, common_arguments, stopwatch  # noqa: E402

BUNDLE = ROOT / "bundles" / "thyroid_mpm_fusion_classification"
VARIANTS = ("fusion", "BSHG", "FSHG", "TPEF", "stack")
DEFAULT_EPOCHS = 50


MODALITIES = ("BSHG", "FSHG", "TPEF")


def _modality_statistics(channel: np.ndarray) -> list[float]:
    """Eight per-image statistics of one 8-bit modality (intensity level, spread, texture)."""
    from scipy import ndimage

    x = channel.astype(float) / 255.0
    return [x.mean(), x.std(), *np.percentile(x, [50, 90, 99]), (x > 0.5).mean(),
            ndimage.gaussian_filter(x, 6).std(), np.abs(np.diff(x, axis=0)).mean()]  # fmt: skip


def _relation(image: np.ndarray) -> list[float]:
    """Correlation of the 6 px-blurred BSHG and FSHG channels (do the puncta sit where the fibres are?)."""
    from scipy import ndimage

    a, b = (ndimage.gaussian_filter(image[..., c].astype(float), 6).ravel() for c in (0, 1))
    return [float(np.corrcoef(a, b)[0, 1])]


def _logistic_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, l2: float = 1.0) -> np.ndarray:
    """L2-regularised logistic regression on standardised features (Newton steps); FTC scores of ``x_test``."""
    mean, sd = x_train.mean(0), x_train.std(0) + 1e-9
    design = np.c_[(x_train - mean) / sd, np.ones(len(x_train))]
    penalty = l2 * np.diag([1.0] * (design.shape[1] - 1) + [0.0])
    w = np.zeros(design.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-design @ w))
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        w -= np.linalg.solve(hessian, design.T @ (p - y_train) + penalty @ w)
    return np.c_[(x_test - mean) / sd, np.ones(len(x_test))] @ w


def feature_baselines(data: str, split_seed: int = 0, folds: int = 4) -> None:
    """Print AUROC of logistic regression on per-modality statistics vs on the BSHG-FSHG relation."""
    from PIL import Image

    from common.data import mpm_datalist
    from common.metrics import binary_auroc

    items = mpm_datalist(data, "all")
    test_sections = {i["section"] for i in mpm_datalist(data, "test", seed=split_seed)}
    images = [np.asarray(Image.open(str(i["image"]))) for i in items]
    labels = np.array([i["label"] for i in items], dtype=float)
    sections = [str(i["section"]) for i in items]
    features = {m: np.array([_modality_statistics(x[..., c]) for x in images]) for c, m in enumerate(MODALITIES)}
    features["all three (side by side)"] = np.concatenate([features[m] for m in MODALITIES], 1)
    features["relation corr(BSHG,FSHG)"] = np.array([_relation(x) for x in images])
    features["all three + relation"] = np.concatenate(list(features.values())[-2:], 1)
    fold_of = {}  # section-grouped folds, dealt round-robin within each class so every fold holds both classes
    for label in (0, 1):
        names = sorted({s for s, y in zip(sections, labels) if y == label})
        fold_of.update({name: k % folds for k, name in enumerate(names)})
    is_test = np.array([s in test_sections for s in sections])
    fold = np.array([fold_of[s] for s in sections])
    print(f"\nhand-made features + logistic regression (no network); {len(items)} regions, test split "
          f"{is_test.sum()} regions / {len(test_sections)} sections")  # fmt: skip
    print(f"{'features':<28}{'test AUROC':<12}{f'{folds}-fold section CV AUROC':<26}")
    for name, x in features.items():
        test = binary_auroc(_logistic_scores(x[~is_test], labels[~is_test], x[is_test]), labels[is_test])
        scores = np.zeros(len(x))
        for k in range(folds):
            scores[fold == k] = _logistic_scores(x[fold != k], labels[fold != k], x[fold == k])
        print(f"{name:<28}{test:<12.3f}{binary_auroc(scores, labels):<26.3f}")


def main() -> int:
    from common.metrics import aggregate_runs
    from common.workflows import run_workflow

    parser = common_arguments(__doc__)
    parser.add_argument("--runs", type=int, default=2, help="repeated runs per variant (the paper: 10)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--features_only", action="store_true", help="only the hand-made feature check")
    args = parser.parse_args()
    epochs = args.epochs or DEFAULT_EPOCHS
    base = args.workdir / "thyroid_mpm_fusion"
    base.mkdir(parents=True, exist_ok=True)
    run_workflow(BUNDLE, "train", run_id="make_sample", quiet=True, bundle_root=str(base))
    data = str(base / "sample_data")
    feature_baselines(data)
    if args.features_only:
        return 0
    results: dict[str, list[dict[str, float]]] = {}
    seconds: dict[str, float] = {}
    for variant in args.variants.split(","):
        results[variant] = []
        with stopwatch() as watch:
            for r in range(args.runs):
                root = base / f"{variant}_run{r}"
                common = {"bundle_root": str(root), "dataset_dir": data, "input_mode": variant}
                run_workflow(BUNDLE, "train", quiet=True, max_epochs=epochs, seed=args.seed + r, **common)
                run_workflow(BUNDLE, "evaluate", quiet=True, split="val", output_dir=str(root / "eval_val"), **common)
                run_workflow(BUNDLE, "evaluate", quiet=True, split="test", **common)
                test = json.loads((root / "eval" / "metrics.json").read_text())["metrics"]
                val = json.loads((root / "eval_val" / "metrics.json").read_text())["metrics"]
                results[variant].append({**{k: v for k, v in test.items() if v is not None}, "val_auroc": val["auroc"]})
        seconds[variant] = watch.seconds
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
