"""Benchmark of the chest_xray_lesion_detection bundle: the paper's Table 1 RetinaNet rows side by side.

Rows: ``baseline`` (RetinaNet on the grey film), ``color`` (+Color), ``cawe`` (+CAWE), ``color_cawe``
(+Color+CAWE), plus the trivial brightest-region detector. Every row trains on the bundle's sample (seed 0) with the
same schedule and seed; the CAWE classifier and the colorizer are trained once (by the first row that needs them)
and copied to the later rows, so the rows differ only by the enhancement. Every model is scored on a held-out sample
written with another seed (all of its films, none seen in training) by the bundle's report code
(``common.engines.DetectionReport``: IoU >= 0.4 hits, every box on a normal film a false positive). Columns:
Sens@1..4 FPpI, the normalised FROC area over 0..4 FPpI, mAP@0.5 and seconds per image (the evaluation pass:
reading, resizing, enhancement, RetinaNet, box selection), then the detector's training time.

    python benchmarks/chest_xray_lesion_detection.py [--epochs N] [--seed 0] [--heldout-seed 1000]
        [--rows baseline color cawe color_cawe] [--cawe-source inter|intra]
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
harness = importlib.import_module("harness")  # the benchmarks folder's shared helpers (not a package)

BUNDLE = harness.ROOT / "bundles" / "chest_xray_lesion_detection"
ROWS = ("baseline", "color", "cawe", "color_cawe")
STAGES = ("cawe_classifier.pt", "cawe_classifier.json", "colorizer.pt", "colorizer.json")
COLUMNS = (("tpr_at_1_fppi", "Sens@1"), ("tpr_at_2_fppi", "Sens@2"), ("tpr_at_3_fppi", "Sens@3"),
           ("tpr_at_4_fppi", "Sens@4"), ("aufc_0_4", "AUFC[0,4]"), ("map", "mAP@0.5"),
           ("seconds_per_image", "s/image"))  # fmt: skip
HELDOUT_DATALIST = "$common.data.rsna_datalist(@dataset_dir, 'all', seed=@seed)"


def run_row(workdir: Path, row: str, args, sample: Path, heldout: Path, epochs: int) -> dict:
    """Train one Table 1 row (reusing the stage checkpoints found in ``workdir/stages``) and score it."""
    from common.workflows import read_metrics, run_workflow

    root, stages = workdir / row, workdir / "stages"
    shutil.rmtree(root, ignore_errors=True)
    (root / "models").mkdir(parents=True)
    for name in STAGES:
        if (stages / name).is_file():
            shutil.copy2(stages / name, root / "models" / name)
    overrides = {
        "bundle_root": str(root),
        "dataset_dir": str(sample),
        "chexpert_dir": str(sample),
        "seed": args.seed,
        "max_epochs": epochs,
        "enhancement": row,
        "cawe_source": args.cawe_source,
    }
    training = harness.train_and_time(BUNDLE, overrides)
    stages.mkdir(exist_ok=True)
    for name in STAGES:
        if (root / "models" / name).is_file() and not (stages / name).is_file():
            shutil.copy2(root / "models" / name, stages / name)
    with harness.stopwatch() as watch:
        run_workflow(BUNDLE, "evaluate", quiet=True, bundle_root=str(root), dataset_dir=str(heldout),
                     datalist=HELDOUT_DATALIST, n_resamples=0, split="heldout")  # fmt: skip
    seconds = watch.seconds
    report = read_metrics(root / "eval" / "metrics.json")
    return {"metrics": report["metrics"], "trivial": report["trivial_baseline"]["metrics"],
            "seconds_per_image": seconds / report["num_images"], **training, "num_images": report["num_images"],
            "num_lesions": report["num_clusters"], "epochs": epochs}  # fmt: skip


def _cell(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> int:
    parser = harness.common_arguments(__doc__)
    parser.add_argument("--heldout-seed", type=int, default=1000, help="seed of the held-out sample")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), help="Table 1 rows to run")
    parser.add_argument("--cawe-source", default="inter", choices=("inter", "intra"), help="CAWE classifier data")
    parser.add_argument("--heldout-patients", type=int, default=60, help="films in the held-out sample")
    args = parser.parse_args()
    workdir = args.workdir / "chest_xray_lesion_detection"
    from common.data import write_chest_xray_sample
    from common.workflows import load_config

    train = load_config(BUNDLE, "train", bundle_root=str(workdir))
    epochs = args.epochs or train.get_parsed_content("short_epochs")
    sample, heldout = workdir / "sample_data", workdir / f"heldout_seed{args.heldout_seed}"
    shutil.rmtree(workdir / "stages", ignore_errors=True)
    write_chest_xray_sample(sample, seed=0, num_patients=train.get_parsed_content("sample_patients"),
                            num_chexpert=train.get_parsed_content("sample_chexpert"), overwrite=True)  # fmt: skip
    write_chest_xray_sample(heldout, seed=args.heldout_seed, num_patients=args.heldout_patients, num_chexpert=1,
                            overwrite=True)  # fmt: skip
    with harness.stopwatch() as watch:
        # the rows that train the stage networks first, so that every later row reuses them
        order = sorted(args.rows, key=lambda r: (r != "color_cawe", ROWS.index(r)))
        results = {row: run_row(workdir, row, args, sample, heldout, epochs) for row in order}
        (workdir / "results.json").write_text(json.dumps(results, indent=1))
        first = next(iter(results.values()))
    total = watch.seconds
    print(
        f"\nlung opacities, held-out sample (seed {args.heldout_seed}, {first['num_images']} films, "
        f"{first['num_lesions']} opacities); every row trained {epochs} epochs on the bundle's sample (seed "
        f"{args.seed}), CAWE classifier {args.cawe_source}-dataset; hit = IoU >= 0.4; this run {total:.0f} s"
    )
    print(f"{'RetinaNet row':<24}" + "".join(f"{title:>11}" for _, title in COLUMNS) + f"{'train s':>10}")
    trivial = first["trivial"]
    print(f"{'trivial (brightest)':<24}" + "".join(f"{_cell(trivial.get(k)):>11}" for k, _ in COLUMNS[:-1])
          + f"{'-':>11}{'-':>10}")  # fmt: skip
    for row in ROWS:
        if row not in results:
            continue
        r = results[row]
        values = {**r["metrics"], "seconds_per_image": r["seconds_per_image"]}
        name = {"baseline": "baseline", "color": "+Color", "cawe": "+CAWE", "color_cawe": "+Color+CAWE"}[row]
        print(f"{name:<24}" + "".join(f"{_cell(values.get(k)):>11}" for k, _ in COLUMNS)
              + f"{r['train_seconds']:>10.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
