"""Benchmark of the mitosis_detection bundle: the ESORDA paper's Table VI ablation on the sample, side by side.

Every row trains on the bundle's sample (labelled source scanner, unlabelled target scanner; seed 0 unless
``--seeds``) for the same epochs with the same schedule, then ``evaluate.yaml`` scores it on the target scanner's
images (the paper's unsupervised setting): MIDOG's F1 at the score threshold of best F1 on the source validation
split (30 px centre distance, hard negatives not counted), AP (COCO IoU 0.5:0.95), AP_S (area < 32^2) and AP50;
seconds per megapixel time tiled inference over the target images (reading, normalisation, tiles, box
selection and NMS), after a warm-up image. Rows: ``source_only`` (FCOS without DAH, the baseline the unsupervised
setting must beat), ``dah``, ``dah_soren``, ``dah_soren_fft``, and ``full`` (+ SRM) when ``--srm-bundle-root`` names
a trained microscopy_super_resolution bundle root. With several seeds: mean ± standard deviation.

    python benchmarks/mitosis_detection.py [--epochs N] [--seeds 0 1] [--srm-bundle-root DIR] [--workdir DIR] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import stopwatch  # noqa: E402

BUNDLE = ROOT / "bundles" / "mitosis_detection"
METHODS = ("source_only", "dah", "dah_soren", "dah_soren_fft", "full")
COLUMNS = (("f1_at_threshold", "F1"), ("precision_at_threshold", "P"), ("recall_at_threshold", "R"), ("ap", "AP"),
           ("ap_small", "AP_S"), ("map", "AP50"), ("seconds_per_megapixel", "s/MP"))  # fmt: skip


def seconds_per_megapixel(root: Path, **overrides) -> float:
    """Tiled inference time over the target images per megapixel (the trained network of ``root``)."""
    import torch

    from common.workflows import load_config

    parser = load_config(BUNDLE, "evaluate", bundle_root=str(root), **overrides)
    network = parser.get_parsed_content("network")
    network.load_state_dict(torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True))
    detector = parser.get_parsed_content("detector")
    parser.get_parsed_content("detector_ops")  # box selection and tiling, as evaluate.yaml sets them
    detector.eval()
    dataset = parser.get_parsed_content("dataset")
    items = [dataset[k]["image"] for k in range(len(dataset))]
    with torch.no_grad():
        detector([items[0]], use_inferer=True)  # warm-up
        with stopwatch() as watch:
            dataset = parser.get_parsed_content("dataset")  # reading and normalisation count
            for k in range(len(dataset)):
                detector([dataset[k]["image"]], use_inferer=True)
        seconds = watch.seconds
    megapixels = sum(int(i.shape[1]) * int(i.shape[2]) for i in items) / 1e6
    return seconds / megapixels


def run(method: str, seed: int, epochs: int, workdir: Path, sample: Path, srm_root: str | None,
        reuse: bool = False) -> dict:  # fmt: skip
    """Train one row with one seed, evaluate it on the target scanner; return its figures.

    With ``reuse``, a row whose folder already holds ``eval/metrics.json`` is not trained again (its s/MP is
    measured again, its training time is not known).
    """
    from common.workflows import read_metrics, run_workflow

    root = workdir / f"{method}_seed{seed}"
    extra = {"srm_bundle_root": srm_root} if method == "full" else {}  # evaluate needs it too: it is not recorded
    train_seconds = None
    if not (reuse and (root / "eval" / "metrics.json").is_file()):
        with stopwatch() as watch:
            run_workflow(BUNDLE, "train", quiet=True, bundle_root=str(root), dataset_dir=str(sample), seed=seed,
                         max_epochs=epochs, resume=False, method=method, **extra)  # fmt: skip
        train_seconds = watch.seconds
        run_workflow(BUNDLE, "evaluate", quiet=True, bundle_root=str(root), dataset_dir=str(sample), n_resamples=0,
                     **extra)  # fmt: skip
    metrics = read_metrics(root / "eval" / "metrics.json")["metrics"]
    if not (root / "sample_data").exists():
        (root / "sample_data").symlink_to(sample, target_is_directory=True)
    metrics["seconds_per_megapixel"] = seconds_per_megapixel(root, **extra)
    metrics["train_seconds"] = train_seconds
    return metrics


def _cell(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--srm-bundle-root", default=None, help="trained microscopy_super_resolution bundle root")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--reuse", action="store_true", help="keep rows whose folder holds eval/metrics.json")
    args = parser.parse_args(argv)
    from common.data import write_midog_sample

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mitosis_bench_"))
    sample = write_midog_sample(workdir / "sample_data", seed=0, source_images=20, target_images=10, image_size=256,
                                overwrite=True)  # fmt: skip
    methods = [m for m in METHODS if m != "full" or args.srm_bundle_root]
    results = {
        m: [run(m, s, args.epochs, workdir, sample, args.srm_bundle_root, args.reuse) for s in args.seeds]
        for m in methods
    }
    (workdir / "results.json").write_text(json.dumps(results, indent=1, default=float))
    print(
        f"\nTable VI on the sample (target scanner aperio_cs2, unsupervised; {args.epochs} epochs, seeds {args.seeds})"
    )
    print("| method | " + " | ".join(title for _, title in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for m in methods:
        print(f"| {m} | " + " | ".join(_cell([r.get(key) for r in results[m]]) for key, _ in COLUMNS) + " |")
    if "full" not in methods:
        print("| full | not run: needs --srm-bundle-root (a trained microscopy_super_resolution bundle) |")
    print(f"\nresults: {workdir / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
