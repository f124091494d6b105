"""Benchmark of the mammography_calcification_detection bundle: blob CAD vs RetinaNet ResNet-50 vs RetinaNet Swin.

Both networks train on the bundle's sample (seed 0) with the same schedule, once per training seed; every model is
scored on a held-out sample written with another seed (all of its images, none seen in training or validation) by
the same FROC code (``common.engines.DetectionReport``: cluster hits at IoU >= 0.1, every box on a normal image a
false positive). The classical baseline is ``common.metrics.blob_cluster_cad`` (difference-of-Gaussians specks
grouped by single linkage; no training, hence no spread over seeds). Columns: TPR at 0.1 FPpI, AUFC over [0, 0.1]
and [0, 1] (normalised), mAP over IoU 0.1:0.05:0.5, seconds per image (whole-image inference: reading, breast crop,
sliding window, box selection). Networks: mean ± standard deviation over the seeds.

    python benchmarks/mammography_calcification_detection.py [--epochs N] [--seeds 0 1 2] [--heldout-seed 1000]
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
harness = importlib.import_module("harness")  # the benchmarks folder's shared helpers (not a package)

BUNDLE = harness.ROOT / "bundles" / "mammography_calcification_detection"
NETWORKS = {"retinanet_resnet50": {"backbone": "resnet50"}, "retinanet_swin_mini": {"backbone": "swin_mini"}}
COLUMNS = (("tpr_at_0.1_fppi", "TPR@0.1FPpI"), ("aufc_0_0.1", "AUFC[0,0.1]"), ("aufc_0_1", "AUFC[0,1]"),
           ("map", "mAP"), ("seconds_per_image", "s/image"))  # fmt: skip
# from random weights the networks need ~100 epochs of the sample (Swin-mini ~3 s/epoch on one thread; ResNet-50 ~8x)
DEFAULT_EPOCHS = 100
HELDOUT_DATALIST = (
    "$sum((common.data.mammography_datalist(@dataset_dir, s, @layout) for s in ('train', 'val', 'test')), [])"
)


def _report_settings() -> dict:
    return {"criterion": "iou:0.1", "fppi_points": [0.1, 0.5, 1.0], "aufc_ranges": [[0.0, 0.1], [0.0, 1.0]]}


def run_network(workdir: Path, name: str, seed: int, epochs: int, sample: Path, heldout: Path) -> dict:
    """Train one network with one seed, evaluate it on the held-out sample; return its figures."""
    from common.workflows import read_metrics, run_workflow

    root = workdir / f"{name}_seed{seed}"
    switches = NETWORKS[name]
    training = harness.train_and_time(BUNDLE, {"bundle_root": str(root), "dataset_dir": str(sample), "seed": seed,
                                       "max_epochs": epochs, "resume": False, **switches})  # fmt: skip
    with harness.stopwatch() as watch:
        run_workflow(BUNDLE, "evaluate", quiet=True, bundle_root=str(root), dataset_dir=str(heldout),
                     datalist=HELDOUT_DATALIST, n_resamples=0, split="heldout")  # fmt: skip
    seconds = watch.seconds
    report = read_metrics(root / "eval" / "metrics.json")
    return {**report["metrics"], "seconds_per_image": seconds / report["num_images"], **training, "seed": seed,
            "epochs": epochs, "num_images": report["num_images"], "num_clusters": report["num_clusters"]}  # fmt: skip


def run_blob_cad(heldout: Path) -> dict:
    """Score the blob-detector CAD on every held-out image, with the bundle's report code."""
    from common.data import mammography_datalist, read_mammogram
    from common.engines import DetectionReport
    from common.metrics import blob_cluster_cad

    items = [i for split in ("train", "val", "test") for i in mammography_datalist(heldout, split)]
    images, watch = [], harness.Stopwatch()
    for item in items:
        boxes, scores = blob_cluster_cad(read_mammogram(item["image"]))
        images.append({"pred_boxes": boxes, "pred_scores": scores, "gt_boxes": item["box"],
                       "patient": item["patient"]})  # fmt: skip
    seconds = watch.seconds / len(items)
    report = DetectionReport(heldout, n_resamples=0, **_report_settings()).evaluate(images)
    return {**report["metrics"], "seconds_per_image": seconds}


def _cell(values: list[float], key: str) -> str:
    array = np.asarray([v for v in values if v is not None], np.float64)
    if not len(array):
        return "n/a"
    digits = 0 if key == "train" else 3
    if len(array) == 1:
        return f"{array[0]:.{digits}f}"
    return f"{array.mean():.{digits}f} ± {array.std(ddof=1):.{digits}f}"


def main() -> int:
    parser = harness.common_arguments(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds of the networks")
    parser.add_argument("--heldout-seed", type=int, default=1000, help="seed of the held-out sample")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS),
                        help="networks to train and score (default: both)")  # fmt: skip
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: print the table of the per-seed results in the work folder")  # fmt: skip
    parser.add_argument("--network", help="internal: train and score one network (with --seed) and write its JSON")
    args = parser.parse_args()
    workdir = args.workdir / "mammography_calcification_detection"
    epochs = args.epochs or DEFAULT_EPOCHS
    sample, heldout = workdir / "sample_data", workdir / f"heldout_seed{args.heldout_seed}"
    if args.network:
        figures = run_network(workdir, args.network, args.seed, epochs, sample, heldout)
        (workdir / f"{args.network}_seed{args.seed}.json").write_text(json.dumps(figures, indent=1))
        return 0

    import subprocess

    from common.data import write_calcification_sample
    from common.workflows import load_config

    workdir.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        train = load_config(BUNDLE, "train", bundle_root=str(workdir))
        size, patients = train.get_parsed_content("sample_image_size"), train.get_parsed_content("sample_patients")
        write_calcification_sample(sample, seed=0, num_patients=patients, image_size=size, overwrite=True)
        write_calcification_sample(heldout, args.heldout_seed, num_patients=patients, image_size=size, overwrite=True)
    with harness.stopwatch() as watch:
        rows = {"blob_cluster_cad": [run_blob_cad(heldout)]}
        for name in NETWORKS:
            rows[name] = []
            for seed in args.seeds:
                out = workdir / f"{name}_seed{seed}.json"
                if not args.report_only and name in args.networks:
                    print(f"--- {name}, seed {seed}", flush=True)
                    cmd = [sys.executable, __file__, "--network", name, "--seed", str(seed), "--epochs", str(epochs),
                           "--heldout-seed", str(args.heldout_seed), "--workdir", str(args.workdir)]  # fmt: skip
                    subprocess.run(cmd, check=True, cwd=harness.ROOT)
                if out.is_file():
                    rows[name].append(json.loads(out.read_text()))
        rows = {name: results for name, results in rows.items() if results}
        first = next(r[0] for n, r in rows.items() if n in NETWORKS)
        seeds = "; ".join(f"{n} {' '.join(str(r['seed']) for r in rows[n])}" for n in NETWORKS if n in rows)
    total = watch.seconds
    print(f"\ncalcification clusters, held-out sample (seed {args.heldout_seed}, {first['num_images']} images, "
          f"{first['num_clusters']} clusters); networks trained {first['epochs']} epochs on the bundle's sample, "
          f"seeds: {seeds} (mean ± std); hit = IoU >= 0.1; this run {total:.0f} s")  # fmt: skip
    print(f"{'model':<22}" + "".join(f"{title:>17}" for _, title in COLUMNS) + f" {'train s':>11}")
    for name, results in rows.items():
        cells = [_cell([r.get(key) for r in results], key) for key, _ in COLUMNS]
        train_s = _cell([r.get("train_seconds") for r in results], "train") if name in NETWORKS else "-"
        print(f"{name:<22}" + "".join(f"{c:>17}" for c in cells) + f" {train_s:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
