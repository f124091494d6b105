"""The histology bundle vs SimpleITK on re-stained real images that its training never sees.

- **training images** (``TRAIN_IMAGES``, scikit-image's natural and texture images): the bundle trains (warm-up +
  unsupervised fine-tuning, checkpoint chosen by the validation local NCC, no landmarks) on an ANHIR-layout folder
  of ``--train_pairs`` pairs cut from them (``write_anhir_sample``: tissue-like blob on white glass, HED
  re-staining, k x 90 deg +- 20 deg, scale 0.85-1.15, shear +- 0.1);
- **test images** (``TEST_IMAGES``: ``immunohistochemistry``, ``retina``, ``cell``): ``--test_pairs`` pairs made the
  same way with another seed, scored with exact landmarks. No training pair is cut from a test image.

Methods on the same test files: identity; SimpleITK multi-resolution Mattes-MI affine from 4 start angles
(``benchmarks/histology_affine_registration.py``'s setting); the bundle after the warm-up only and after warm-up +
fine-tuning, one run per seed (``--seeds``); one thread for every tool. Prints MMrTRE, AMrTRE (mean ± std over
seeds), the worst pair's MrTRE, the pairs worse than the identity and seconds per pair.

    python benchmarks/histology_affine_registration_real_images.py [--seeds 0,1] [--epochs 20] [--warmup_epochs 30]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Stopwatch, stopwatch  # noqa: E402
from histology_affine_registration import simpleitk_affine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "histology_affine_registration"
TRAIN_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "camera", "coins", "moon", "brick",
                "grass", "gravel", "clock")  # fmt: skip
TEST_IMAGES = ("immunohistochemistry", "retina", "cell")
AFFINES = {"max_angle": 20.0, "scale": (0.85, 1.15), "shear": 0.1}


def pair_scores(warped: np.ndarray, item: dict) -> dict[str, float]:
    """MrTRE of the warped landmarks and of the identity for one pair."""
    from PIL import Image

    from common.data import read_landmarks
    from common.metrics import relative_tre

    src, tgt = read_landmarks(item["moving_landmarks"]), read_landmarks(item["fixed_landmarks"])
    with Image.open(item["fixed"]) as img:
        diag = float(np.hypot(*img.size))
    return {"MrTRE": float(np.median(relative_tre(warped, tgt, diag))),
            "initial": float(np.median(relative_tre(src, tgt, diag)))}  # fmt: skip


def summary(pairs: list[dict], seconds: float) -> dict:
    """ANHIR's MMrTRE / AMrTRE, the worst pair and the pairs worse than the identity."""
    m = np.array([p["MrTRE"] for p in pairs])
    worse = sum(p["MrTRE"] > p["initial"] for p in pairs)
    return {"MMrTRE": float(np.median(m)), "AMrTRE": float(m.mean()), "worst": float(m.max()), "worse": int(worse),
            "seconds": seconds}  # fmt: skip


def bundle_rows(root: Path, test: Path, items: list[dict], seed: int) -> dict:
    """Evaluate (seconds per pair) and infer (landmarks per pair) a trained bundle run on the test folder."""
    from common.data import read_landmarks
    from common.transforms.affine_histology import pair_stem
    from common.workflows import run_workflow

    run_workflow(BUNDLE, "evaluate", quiet=True, bundle_root=str(root), dataset_dir=str(test), seed=seed)
    report = json.loads((root / "eval" / "metrics.json").read_text())["metrics"]
    out = root / "test_outputs"
    shutil.rmtree(out, ignore_errors=True)
    run_workflow(BUNDLE, "inference", quiet=True, bundle_root=str(root), dataset_dir=str(test), seed=seed,
                 output_dir=str(out), status="evaluation")  # fmt: skip
    pairs = [pair_scores(read_landmarks(out / f"{pair_stem(i['image'], i['fixed'])}_landmarks.csv"), i) for i in items]
    return summary(pairs, report["seconds_per_pair"])


def interleaved_seconds(run_root: Path, test: Path, seed: int, sitk_register) -> tuple[list[float], list[float]]:
    """Seconds per pair of SimpleITK and of the bundle's network, timed pair by pair in alternating order.

    The accuracy passes run the tools one after the other, minutes apart; on a shared machine their load differs,
    so the speed ratio comes from this pass instead: for each test pair, SimpleITK's 4-start registration and the
    bundle's inferer (four-angle search, as ``PairTimer`` times it in evaluate) on the same preprocessed files,
    the first of the two alternating from pair to pair.
    """
    import torch

    from common.workflows import load_config

    parser = load_config(BUNDLE, "inference", bundle_root=str(run_root), dataset_dir=str(test), seed=seed,
                         status="evaluation")  # fmt: skip
    preprocessing, inferer = parser.get_parsed_content("preprocessing"), parser.get_parsed_content("inferer")
    network = parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(run_root / "models" / "model.pt", map_location="cpu", weights_only=True))
    network.eval()
    ours, theirs = [], []
    for k, item in enumerate(parser.get_parsed_content("datalist")):
        image = preprocessing(dict(item))["image"][None]

        def bundle(image=image) -> None:
            inferer(image, network)

        def simpleitk(item=item) -> None:
            sitk_register(item["image"], item["fixed"])

        for name, call in ((("bundle", bundle), ("sitk", simpleitk)) if k % 2 == 0 else
                           (("sitk", simpleitk), ("bundle", bundle))):  # fmt: skip
            with stopwatch() as watch:
                call()
            (ours if name == "bundle" else theirs).append(watch.seconds)
    return ours, theirs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs")
    parser.add_argument("--warmup_epochs", type=int, default=30)
    parser.add_argument("--train_pairs", type=int, default=24)
    parser.add_argument("--test_pairs", type=int, default=12)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".artifacts" / "benchmarks" / "histology_real_images")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]

    import SimpleITK as sitk  # noqa: N813
    import torch

    from common.data import anhir_datalist, read_landmarks, write_anhir_sample
    from common.workflows import run_workflow

    # the same single thread for both tools (and no oversubscription of shared cores)
    torch.set_num_threads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)

    root = args.workdir
    train, test = root / "train_data", root / "test_data"
    write_anhir_sample(train, seed=2000, num_pairs=args.train_pairs, num_evaluation=0, images=TRAIN_IMAGES,
                       overwrite=True, **AFFINES)  # fmt: skip
    write_anhir_sample(test, seed=3000, num_pairs=args.test_pairs, num_evaluation=args.test_pairs, images=TEST_IMAGES,
                       overwrite=True, **AFFINES)  # fmt: skip
    items = anhir_datalist(test, "evaluation", require_landmarks=True)
    rows: dict[str, dict] = {}
    rows["identity"] = summary([pair_scores(read_landmarks(i["moving_landmarks"]), i) for i in items], 0.0)
    watch = Stopwatch()
    warped = [simpleitk_affine(i["image"], i["fixed"], 0, (0, 90, 180, 270))(read_landmarks(i["moving_landmarks"]))
              for i in items]  # fmt: skip
    rows["SimpleITK Mattes MI, 4 start angles"] = summary(
        [pair_scores(w, i) for w, i in zip(warped, items)], watch.seconds / len(items)
    )

    per_seed: dict[str, list[dict]] = {"bundle, warm-up only": [], "bundle, warm-up + fine-tuning": []}
    train_seconds = []
    for seed in seeds:
        run = root / f"seed{seed}"
        with stopwatch() as watch:
            run_workflow(BUNDLE, "train", quiet=True, bundle_root=str(run), dataset_dir=str(train), seed=seed,
                         max_epochs=args.epochs, warmup_epochs=args.warmup_epochs)  # fmt: skip
        train_seconds.append(watch.seconds)
        # the warm-up's own checkpoint (cache/warmup) scored as a model of its own: the ablation
        warm = root / f"seed{seed}_warmup_only"
        (warm / "models").mkdir(parents=True, exist_ok=True)
        shutil.copy(run / "cache" / "warmup" / "warmup.pt", warm / "models" / "model.pt")
        shutil.copy(run / "cache" / "warmup" / "training_plan.json", warm / "models" / "training_plan.json")
        per_seed["bundle, warm-up only"].append(bundle_rows(warm, test, items, seed))
        per_seed["bundle, warm-up + fine-tuning"].append(bundle_rows(run, test, items, seed))
    for name, runs in per_seed.items():
        rows[name] = {k: float(np.mean([r[k] for r in runs])) for k in ("MMrTRE", "AMrTRE", "seconds")}
        rows[name].update({f"{k}_std": float(np.std([r[k] for r in runs])) for k in ("MMrTRE", "AMrTRE")})
        rows[name]["worst"] = max(r["worst"] for r in runs)
        rows[name]["worse"] = max(r["worse"] for r in runs)
        rows[name]["per_seed"] = runs
    # speed: both tools pair by pair in one interleaved pass (the fine-tuned network of the first seed)
    ours, theirs = interleaved_seconds(root / f"seed{seeds[0]}", test, seeds[0],
                                       lambda m, f: simpleitk_affine(m, f, 0, (0, 90, 180, 270)))  # fmt: skip
    timing = {"bundle s/pair": float(np.median(ours)), "SimpleITK s/pair": float(np.median(theirs)),
             "ratio": float(np.median(np.array(theirs) / np.array(ours))),
             "ratio_range": [float(np.min(np.array(theirs) / np.array(ours))),
                             float(np.max(np.array(theirs) / np.array(ours)))]}  # fmt: skip
    (root / "results.json").write_text(json.dumps({"rows": rows, "train_seconds": train_seconds, "speed": timing},
                                                  indent=2))  # fmt: skip

    ref = rows["SimpleITK Mattes MI, 4 start angles"]["seconds"]
    print(f"\nre-stained real test pairs: {len(items)} from {', '.join(TEST_IMAGES)}; training pairs: "
          f"{args.train_pairs} from {len(TRAIN_IMAGES)} other scikit-image images; affines k x 90 +- "
          f"{AFFINES['max_angle']:.0f} deg, scale {AFFINES['scale']}, shear +- {AFFINES['shear']}; bundle: "
          f"{args.warmup_epochs} warm-up + {args.epochs} fine-tuning epochs, seeds {seeds}, training s per seed: "
          + ", ".join(f"{s:.0f}" for s in train_seconds))  # fmt: skip
    print(f"| {'method':<36} | {'MMrTRE':>15} | {'AMrTRE':>15} | {'worst MrTRE':>11} | {'worse than id':>13} "
          f"| {'s/pair':>7} | {'speed vs SITK':>13} |")  # fmt: skip
    print("|" + "|".join("-" * (w + 2) for w in (36, 15, 15, 11, 13, 7, 13)) + "|")
    for name, r in rows.items():
        mm = f"{r['MMrTRE']:.4f}" + (f" ± {r['MMrTRE_std']:.4f}" if "MMrTRE_std" in r else "")
        am = f"{r['AMrTRE']:.4f}" + (f" ± {r['AMrTRE_std']:.4f}" if "AMrTRE_std" in r else "")
        speed = f"{ref / r['seconds']:.1f}x" if r["seconds"] > 0 else "-"
        print(f"| {name:<36} | {mm:>15} | {am:>15} | {r['worst']:>11.4f} | {r['worse']:>13} | {r['seconds']:>7.3f} "
              f"| {speed:>13} |")  # fmt: skip
    print(f"(s/pair above: each tool's own pass, minutes apart.) Interleaved pass, pair by pair in alternating order, "
          f"{len(ours)} pairs: bundle {timing['bundle s/pair']:.3f} s/pair, SimpleITK {timing['SimpleITK s/pair']:.3f} "
          f"s/pair (medians); SimpleITK / bundle per pair: median {timing['ratio']:.1f}x, range "
          f"{timing['ratio_range'][0]:.1f}x-{timing['ratio_range'][1]:.1f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
