"""Benchmark of the histology_affine_registration bundle against the identity and a SimpleITK baseline.

Generates an ANHIR-layout sample (scikit-image IHC pairs under known random affines), trains the bundle (warm-up on
synthetic homographies + unsupervised fine-tuning), then registers the evaluation pairs with:

- identity: no transform;
- SimpleITK: multi-resolution affine registration, Mattes mutual information (50 bins, 20 % random sampling),
  regular-step gradient descent (learning rate 1, min step 1e-4, 200 iterations per level), shrink factors 4/2/1,
  smoothing sigmas 2/1/0 px, centred-moments initialisation, physical-shift scales, on inverted grey images at the
  original resolution;
- SimpleITK, 4 start angles: the same from 0/90/180/270 degrees, best final metric kept;
- the bundle after the supervised warm-up only (ablation), and after warm-up + unsupervised fine-tuning (evaluate.yaml:
  four-angle search, RANSAC, NCC selection).

Prints ANHIR's aggregates (robustness, MMrTRE, AMrTRE, MArTRE, AArTRE) and seconds per pair.

    python benchmarks/histology_affine_registration.py [--pairs 24] [--evaluation 8] [--epochs 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import Stopwatch, stopwatch  # noqa: E402

BUNDLE = ROOT / "bundles" / "histology_affine_registration"


def _grey_inverted(path: str):
    import SimpleITK as sitk  # noqa: N813
    from PIL import Image

    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"), np.float32) / 255.0
    grey = 1.0 - (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])
    return sitk.GetImageFromArray(grey.astype(np.float32)), grey.shape


def simpleitk_affine(moving_path: str, fixed_path: str, seed: int = 0, angles: tuple[int, ...] = (0,)):
    """Return a function mapping source (moving) points to the target (fixed) frame, from a SimpleITK affine.

    With several ``angles`` (degrees), registration starts from each rotation (about the moving image's centre of
    mass, after the centred-moments initialisation) and the result with the best final Mattes MI is kept.
    """
    import math

    import SimpleITK as sitk  # noqa: N813

    moving, _ = _grey_inverted(moving_path)
    fixed, _ = _grey_inverted(fixed_path)
    best, best_value = None, math.inf
    for angle in angles:
        initial = sitk.CenteredTransformInitializer(fixed, moving, sitk.AffineTransform(2),
                                                    sitk.CenteredTransformInitializerFilter.MOMENTS)  # fmt: skip
        initial = sitk.AffineTransform(initial)
        initial.Rotate(0, 1, math.radians(angle))
        reg = sitk.ImageRegistrationMethod()
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
        reg.SetMetricSamplingStrategy(reg.RANDOM)
        reg.SetMetricSamplingPercentage(0.2, seed + 1)  # SimpleITK's seed 0 is sitkWallClock: not repeatable
        reg.SetInterpolator(sitk.sitkLinear)
        reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=200)
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetShrinkFactorsPerLevel([4, 2, 1])
        reg.SetSmoothingSigmasPerLevel([2, 1, 0])
        reg.SetInitialTransform(initial, inPlace=False)
        transform = reg.Execute(fixed, moving)  # maps fixed points to moving points
        if reg.GetMetricValue() < best_value:
            best, best_value = transform, reg.GetMetricValue()
    inverse = best.GetInverse()
    return lambda pts: np.array([inverse.TransformPoint((float(x), float(y))) for x, y in pts])


def scores(warped: list[np.ndarray], items: list[dict]) -> dict[str, float]:
    from PIL import Image

    from common.data import read_landmarks
    from common.metrics import anhir_aggregates, anhir_pair_scores, relative_tre

    pairs = []
    for w, item in zip(warped, items):
        src, tgt = read_landmarks(item["moving_landmarks"]), read_landmarks(item["fixed_landmarks"])
        with Image.open(item["fixed"]) as img:
            diag = float(np.hypot(*img.size))
        pairs.append(anhir_pair_scores(relative_tre(w, tgt, diag), relative_tre(src, tgt, diag)))
    return anhir_aggregates(pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--evaluation", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--warmup_epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".artifacts" / "benchmarks" / "histology_affine")
    args = parser.parse_args()

    from common.data import anhir_datalist, read_landmarks, write_anhir_sample
    from common.workflows import run_workflow

    root = args.workdir
    sample = root / "sample_data"
    write_anhir_sample(sample, seed=args.seed + 1000, num_pairs=args.pairs, num_evaluation=args.evaluation,
                       overwrite=True)  # fmt: skip
    items = anhir_datalist(sample, "evaluation", require_landmarks=True)
    rows = {}

    identity = [read_landmarks(i["moving_landmarks"]) for i in items]
    rows["identity"] = {**scores(identity, items), "seconds_per_pair": 0.0}

    watch = Stopwatch()
    warped = [simpleitk_affine(i["image"], i["fixed"], args.seed)(read_landmarks(i["moving_landmarks"])) for i in items]
    rows["SimpleITK affine (Mattes MI)"] = {**scores(warped, items),
                                            "seconds_per_pair": watch.seconds / len(items)}  # fmt: skip
    watch = Stopwatch()
    angles = (0, 90, 180, 270)
    warped = [simpleitk_affine(i["image"], i["fixed"], args.seed, angles)(read_landmarks(i["moving_landmarks"]))
              for i in items]  # fmt: skip
    rows["SimpleITK, 4 start angles"] = {**scores(warped, items),
                                         "seconds_per_pair": watch.seconds / len(items)}  # fmt: skip

    # ablation: the matcher after the supervised warm-up only (no unsupervised fine-tuning)
    import torch

    from common.workflows import load_config

    ablation = root / "warmup_only"
    parser = load_config(BUNDLE, "train", bundle_root=str(ablation), dataset_dir=str(sample), seed=args.seed,
                         warmup_epochs=args.warmup_epochs)  # fmt: skip
    parser.get_parsed_content("initialize")
    parser.get_parsed_content("warmup#trainer").run()
    (ablation / "models").mkdir(parents=True, exist_ok=True)
    torch.save(parser.get_parsed_content("network").state_dict(), ablation / "models" / "model.pt")
    run_workflow(BUNDLE, "evaluate", quiet=True, bundle_root=str(ablation), dataset_dir=str(sample), seed=args.seed)
    report = json.loads((ablation / "eval" / "metrics.json").read_text())["metrics"]
    rows["bundle, warm-up only"] = {k: report[k] for k in ("robustness", "MMrTRE", "AMrTRE", "MArTRE", "AArTRE",
                                                            "seconds_per_pair")}  # fmt: skip

    overrides = {"bundle_root": str(root), "seed": args.seed}
    with stopwatch() as watch:
        run_workflow(BUNDLE, "train", quiet=True, max_epochs=args.epochs, warmup_epochs=args.warmup_epochs, **overrides)
    train_seconds = watch.seconds
    with stopwatch() as watch:
        run_workflow(BUNDLE, "evaluate", quiet=True, **overrides)
    eval_seconds = watch.seconds
    report = json.loads((root / "eval" / "metrics.json").read_text())["metrics"]
    rows["bundle, warm-up + fine-tuning"] = {k: report[k] for k in ("robustness", "MMrTRE", "AMrTRE", "MArTRE",
                                                                      "AArTRE")}  # fmt: skip
    rows["bundle, warm-up + fine-tuning"]["seconds_per_pair"] = report["seconds_per_pair"]

    print(f"\nANHIR-layout IHC sample: {args.pairs} pairs ({len(items)} evaluated), seed {args.seed}; bundle trained "
          f"{args.warmup_epochs} warm-up + {args.epochs} fine-tuning epochs in {train_seconds:.0f} s, evaluated in "
          f"{eval_seconds:.0f} s; rTRE = TRE / target diagonal")  # fmt: skip
    cols = ("robustness", "MMrTRE", "AMrTRE", "MArTRE", "AArTRE", "seconds_per_pair")
    print(f"| {'method':<34} | " + " | ".join(f"{c:>16}" for c in cols) + " |")
    print("|" + "-" * 36 + "|" + "|".join("-" * 18 for _ in cols) + "|")
    for name, r in rows.items():
        print(f"| {name:<34} | " + " | ".join(f"{r[c]:>16.4f}" for c in cols) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
